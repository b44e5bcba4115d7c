// The managed-mesh token chain (KRUN_GOOGLE_TOKENS) against the real kube-apiserver and the emulated STS and IAM
// Credentials: the workload's ServiceAccount token for the trust domain (STS checks it with a TokenReview at the
// cluster's apiserver) → a federated access token of the identity namespace → an access token of the mesh data-plane
// service account. The tokens land next to istio-token (0600, kubelet's atomic layout) and are refreshed.
import assert from 'node:assert/strict';
import { lstat, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { KubeClient } from '../../src/lib/kube/client.ts';
import { loadKubeconfig } from '../../src/lib/kube/kubeconfig.ts';
import { agentEnvironment } from '../../src/lib/mesh/injector.ts';
import { keepFresh } from '../../src/lib/run/refresh.ts';
import { ISTIO_TOKEN_DIR, jwtLifetimeMs, writeTokenFiles } from '../../src/lib/run/tokens.ts';
import { krun } from '../support/cli.ts';
import { testContext } from '../support/context.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { gcpTestbed, gkeWorkloadNamespace } from '../support/gcp/testbed.ts';
import { verifyAccessToken } from '../support/gcp/tokens.ts';
import { launcherCase } from '../support/launcher-case.ts';
import { ManualClock } from '../support/manual-clock.ts';

const PROJECT = 'chain-proj';
const NUMBER = '246813579024';
const POOL = `${PROJECT}.svc.id.goog`;
const CLUSTER_URL = `https://container.googleapis.com/v1/projects/${PROJECT}/locations/us-central1/clusters/mesh`;
const AUDIENCE = `identitynamespace:${POOL}:${CLUSTER_URL}`;
const P4SA = `service-${NUMBER}@gcp-sa-meshdataplane.iam.gserviceaccount.com`;
const testbed = await gcpTestbed('google-tokens', {
  projectId: PROJECT,
  projectNumber: NUMBER,
  region: 'us-central1',
});
const { plane, kube, gcp, work } = testbed;

before(() => {
  gcp.state.addCluster({ name: 'mesh', location: 'us-central1', kube: plane.access });
  gcp.state.addServiceAccount({ projectId: PROJECT, accountId: `service-${NUMBER}`, email: P4SA });
});

/** A namespace whose Google service account may create its tokens; `bound` lets its KSA impersonate the P4SA. */
async function workload(bound: boolean, extra: Record<string, string> = {}) {
  const ns = await gkeWorkloadNamespace(testbed, 'chain', PROJECT);
  if (bound) {
    gcp.state.grant(
      `projects/${PROJECT}/serviceAccounts/${P4SA}`,
      'roles/iam.workloadIdentityUser',
      `serviceAccount:${POOL}[${ns}/default]`,
    );
  }
  const { dir, env } = await launcherCase(work, { ...gcp.env(), K_SERVICE: 'fortio', ...extra });
  return { ns, dir, env };
}

const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { aud: string[]; sub: string };

describe('krun run with KRUN_GOOGLE_TOKENS', () => {
  test('dataplane: K8s token for the trust domain → STS federated token → the data-plane account, in 0600 files', async () => {
    const { ns, dir, env } = await workload(true, { KRUN_GOOGLE_TOKENS: 'dataplane' });
    const script = `echo "$KRUN_GOOGLE_FEDERATED_TOKEN_FILE $KRUN_GOOGLE_DATAPLANE_TOKEN_FILE"`;
    const r = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    const tokens = join(dir, ISTIO_TOKEN_DIR);
    // The app was told where the tokens are
    assert.equal(r.stdout, `${join(tokens, 'google-federated-token')} ${join(tokens, 'google-dataplane-token')}\n`);
    // The subject: istio-token, for the trust domain, as the workload's KSA
    const subject = await readFile(join(tokens, 'istio-token'), 'utf8');
    assert.deepEqual(claims(subject).aud, [POOL]);
    assert.equal(claims(subject).sub, `system:serviceaccount:${ns}:default`);
    // The federated token acts as the KSA's identity-namespace member, for cloud-platform
    const federated = verifyAccessToken(
      gcp.accessTokenKey,
      await readFile(join(tokens, 'google-federated-token'), 'utf8'),
    );
    assert.equal(federated?.member, `serviceAccount:${POOL}[${ns}/default]`);
    assert.deepEqual(federated?.scopes, ['https://www.googleapis.com/auth/cloud-platform']);
    // The data-plane token is the P4SA's
    const dataplane = verifyAccessToken(
      gcp.accessTokenKey,
      await readFile(join(tokens, 'google-dataplane-token'), 'utf8'),
    );
    assert.equal(dataplane?.member, `serviceAccount:${P4SA}`);
    assert.equal(dataplane?.email, P4SA);
    // Owner-only files in kubelet's atomic ..data layout
    for (const file of ['istio-token', 'google-federated-token', 'google-dataplane-token']) {
      assert.equal((await stat(join(tokens, file))).mode & 0o777, 0o600, file);
      assert.equal(await readlink(join(tokens, file)), `..data/${file}`);
    }
    // The exact STS audience is logged; no token is
    assert.match(
      r.stderr,
      new RegExp(
        `"message":"exchanged the ServiceAccount token for Google tokens","audience":"${AUDIENCE}","dataplane":"${P4SA}"`,
      ),
    );
    assert.doesNotMatch(r.stderr, /ya29\.|eyJ/);
  });

  test('federated with an OSS istio-token audience: a separate subject token for the trust domain', async () => {
    const { ns, dir, env } = await workload(false, {
      KRUN_GOOGLE_TOKENS: 'federated',
      KRUN_ISTIO_TOKEN_AUDIENCE: 'istio-ca',
    });
    const r = await krun(['run', '--', 'true'], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    const tokens = join(dir, ISTIO_TOKEN_DIR);
    assert.deepEqual(claims(await readFile(join(tokens, 'istio-token'), 'utf8')).aud, ['istio-ca']);
    const federated = verifyAccessToken(
      gcp.accessTokenKey,
      await readFile(join(tokens, 'google-federated-token'), 'utf8'),
    );
    assert.equal(federated?.member, `serviceAccount:${POOL}[${ns}/default]`);
    await assert.rejects(lstat(join(tokens, 'google-dataplane-token')), /ENOENT/);
  });

  test('failures stop krun before the app and name the fix', async () => {
    // The KSA may not impersonate the data-plane account
    const unbound = await workload(false, { KRUN_GOOGLE_TOKENS: 'dataplane' });
    const denied = await krun(['run', '--', 'sh', '-c', 'echo app ran'], { cleanEnv: unbound.env });
    assert.equal(denied.status, 1);
    assert.equal(denied.stdout, '');
    const member = `serviceAccount:${POOL}[${unbound.ns}/default]`;
    assert.ok(denied.stderr.includes(`error: forbidden: ${member} may not impersonate ${P4SA}`), denied.stderr);
    assert.ok(
      denied.stderr.includes(
        `gcloud iam service-accounts add-iam-policy-binding ${P4SA} --role roles/iam.workloadIdentityUser --member '${member}'`,
      ),
      denied.stderr,
    );
    // A trust domain that is not the cluster's identity namespace
    const wrong = await workload(false, { KRUN_GOOGLE_TOKENS: 'federated', TRUST_DOMAIN: 'other.svc.id.goog' });
    const refused = await krun(['run', '--', 'true'], { cleanEnv: wrong.env });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /error: Google STS refused the workload identity exchange \(invalid_target: /);
    // Off Google Cloud with no cluster configured, or with a cluster named but not connected to (Traffic Director)
    const offCloud = { ...wrong.env, GCE_METADATA_HOST: '', K_SERVICE: '', TRUST_DOMAIN: '' };
    const alone = await krun(['run', '--', 'true'], { cleanEnv: offCloud });
    assert.equal(alone.status, 2);
    assert.match(alone.stderr, /error: env KRUN_GOOGLE_TOKENS needs the GKE cluster: its project, location and name/);
    const named = { PROJECT_ID: PROJECT, CLUSTER_LOCATION: 'us-central1', CLUSTER_NAME: 'mesh', MESH: 'td:projects=1' };
    const td = await krun(['run', '--', 'true'], { cleanEnv: { ...offCloud, ...named } });
    assert.equal(td.status, 2);
    assert.match(td.stderr, /error: env KRUN_GOOGLE_TOKENS needs a cluster to request the subject token from/);
    // A bad value
    const bad = await krun(['run', '--print-config'], { cleanEnv: { ...wrong.env, KRUN_GOOGLE_TOKENS: 'yes' } });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /env KRUN_GOOGLE_TOKENS is "yes": not one of off, federated, dataplane/);
  });
});

describe('the chain in-process', () => {
  test('is refreshed at 80% of its shortest lifetime, with the injected clock', async (t) => {
    const ns = await kube.createNamespace('chain-refresh');
    await kube.createServiceAccount(ns, 'app');
    gcp.state.grant(
      `projects/${PROJECT}/serviceAccounts/${P4SA}`,
      'roles/iam.workloadIdentityUser',
      `serviceAccount:${POOL}[${ns}/app]`,
    );
    const connection = await loadKubeconfig([plane.kubeconfig]);
    assert.ok(connection);
    const client = new KubeClient(connection);
    const dir = join(work, ns);
    const clock = new ManualClock();
    const ctx = testContext({ clock });
    // K8s tokens for two hours: the one-hour Google tokens set the pace
    const write = () =>
      writeTokenFiles(client, {
        baseDir: dir,
        target: { namespace: ns, serviceAccount: 'app', expirationSeconds: 7200 },
        istioAudience: POOL,
        now: clock.now().getTime(),
        google: { trustDomain: POOL, audience: AUDIENCE, dataplaneServiceAccount: P4SA, env: gcp.env() },
      });
    const first = await write();
    const tokens = join(dir, ISTIO_TOKEN_DIR);
    const subject = await readFile(join(tokens, 'istio-token'), 'utf8');
    assert.equal(jwtLifetimeMs(subject), 7200 * 1000);
    assert.equal(first, clock.now().getTime() + 0.8 * 3600 * 1000);
    const stop = new AbortController();
    const loop = keepFresh(write, first, { what: 'token refresh', clock, log: ctx.log, signal: stop.signal });
    t.after(async () => {
      stop.abort();
      await loop;
      client.close();
    });
    const version = await readlink(join(tokens, '..data'));
    await waitFor('the refresh loop to sleep', async () => (clock.pending === 1 ? true : undefined));
    assert.equal(clock.requested.at(-1), 0.8 * 3600 * 1000);
    clock.advance(0.8 * 3600 * 1000);
    await waitFor('a new token set', async () =>
      (await readlink(join(tokens, '..data'))) !== version ? true : undefined,
    );
    const federated = await readFile(join(tokens, 'google-federated-token'), 'utf8');
    assert.equal(verifyAccessToken(gcp.accessTokenKey, federated)?.member, `serviceAccount:${POOL}[${ns}/app]`);
    assert.notEqual(await readFile(join(tokens, 'istio-token'), 'utf8'), subject);
  });

  test('pilot-agent gets the cluster URL and GCP_METADATA its own STS exchange needs', () => {
    const env = agentEnvironment({
      mode: 'proxyless',
      envoy: 'envoy',
      baseDir: '/',
      namespace: 'ns',
      name: 'app',
      serviceAccount: 'default',
      podName: 'p',
      revision: 'latest',
      trustDomain: POOL,
      xdsAddr: 'meshconfig.googleapis.com:443',
      caAddr: 'meshconfig.googleapis.com:443',
      istiodSan: 'istiod.istio-system.svc',
      clusterId: 'c',
      meshId: `proj-${NUMBER}`,
      statusPort: 15020,
      isRoot: false,
      onGoogleCloud: true,
      gke: { clusterUrl: CLUSTER_URL, gcpMetadata: `${PROJECT}|${NUMBER}|mesh|us-central1` },
    });
    assert.equal(env.GKE_CLUSTER_URL, CLUSTER_URL);
    assert.equal(env.GCP_METADATA, `${PROJECT}|${NUMBER}|mesh|us-central1`);
  });
});
