// A Fleet member that is not a GKE cluster, reached through the (emulated) Connect Gateway: `krun run` finds it in
// GKE Hub, writes the Pod files through the gateway as its Google identity (the Connect Agent impersonates the email,
// so RBAC for the email applies), and `krun kubeconfig` writes an entry that real kubectl uses through the gateway.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { ISTIO_TOKEN_DIR } from '../../src/lib/run/tokens.ts';
import { krun } from '../support/cli.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { verifyAccessToken } from '../support/gcp/tokens.ts';
import { launcherCase } from '../support/launcher-case.ts';

const PROJECT = 'edge-proj';
const NUMBER = '135792468013';
const { plane, kube, gcp, work } = await gcpTestbed('gateway', {
  projectId: PROJECT,
  projectNumber: NUMBER,
  region: 'us-west1',
});
const GATEWAY = `${gcp.endpoints.connectgateway}/v1/projects/${NUMBER}/locations/global/gkeMemberships/edge`;

before(() => {
  // No GKE cluster in the project: only an attached (non-GKE) cluster, registered in the fleet
  gcp.state.addMembership({ name: 'edge', kube: plane.access });
});

async function workload(gatewayRole: string, project = PROJECT, extra: Record<string, string> = {}) {
  const ns = await kube.createNamespace('gateway');
  await kube.createServiceAccount(ns, 'default');
  const email = `k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`;
  gcp.state.addServiceAccount({ accountId: `k8s-${ns}` });
  gcp.metadata.serviceAccount = email;
  for (const role of ['roles/container.clusterViewer', 'roles/gkehub.viewer', gatewayRole]) {
    gcp.state.grant(`projects/${project}`, role, email);
  }
  await kube.grant(
    ns,
    'krun',
    [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['default'], verbs: ['create'] }],
    [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: email }],
  );
  // A PATH without gke-gcloud-auth-plugin (this machine may have one)
  const { dir, env } = await launcherCase(work, {
    ...gcp.env(),
    PATH: join(work, 'no-plugin'),
    K_SERVICE: 'edge-app',
    ...extra,
  });
  return { ns, email, dir, env };
}

describe('a Fleet member behind the Connect Gateway', () => {
  test('krun run writes the Pod files through the gateway, as its Google identity', async () => {
    const { ns, dir, env } = await workload('roles/gkehub.gatewayEditor');
    const r = await krun(['run', '--', '/bin/sh', '-c', `/bin/cat "$KRUN_SERVICE_ACCOUNT_DIR/token" > ${dir}/token`], {
      cleanEnv: env,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /"message":"selected Fleet membership","membership":"projects\/edge-proj\/locations\/global\/memberships\/edge","reason":"Fleet membership edge through the Connect Gateway"/,
    );
    assert.ok(r.stderr.includes(`"server":"${GATEWAY}"`), r.stderr);
    const token = await readFile(join(dir, 'token'), 'utf8');
    assert.equal((await kube.reviewToken(token, [])).user?.username, `system:serviceaccount:${ns}:default`);
  });

  test("without the gateway's write permission, the error names it", async () => {
    const { env } = await workload('roles/gkehub.gatewayReader');
    const r = await krun(['run', '--', '/bin/true'], { cleanEnv: env });
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /error: forbidden: krun may not create tokens for ServiceAccount .*Permission 'gkehub\.gateway\.post' denied on resource 'projects\/135792468013\/locations\/global\/memberships\/edge'/,
    );
  });

  test('krun kubeconfig names the entry like gcloud, and kubectl reaches the member through the gateway', async () => {
    const { email, dir, env } = await workload('roles/gkehub.gatewayEditor');
    const r = await krun(['kubeconfig', '--project', PROJECT], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^current-context: connectgateway_edge-proj_edge$/m);
    assert.ok(r.stdout.includes(`server: ${GATEWAY}\n`), r.stdout);
    const file = join(dir, 'kubeconfig.yaml');
    await writeFile(file, r.stdout, { mode: 0o600 });
    // The gateway's certificate chains to the emulator's CA: Go's SSL_CERT_FILE stands in for the system roots
    const whoami = await new Promise<string>((resolve, reject) =>
      execFile(
        '/usr/bin/kubectl',
        ['--kubeconfig', file, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
        { env: { HOME: dir, SSL_CERT_FILE: gcp.frontEnd.caFile } },
        (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)),
      ),
    );
    assert.equal(whoami, email);
  });
});

describe('the GKE identity of a Fleet member (GKE_CLUSTER_URL, the STS audience)', () => {
  test('a member that is not a GKE cluster has none: the token chain says so, --print-config shows why', async () => {
    const { env } = await workload('roles/gkehub.gatewayEditor');
    const printed = await krun(['run', '--print-config', '-o', 'json'], { cleanEnv: env });
    assert.equal(printed.status, 0, printed.stderr);
    const why = 'Fleet membership edge is not a GKE cluster (it has no endpoint.gkeCluster.resourceLink)';
    assert.deepEqual(JSON.parse(printed.stdout).clusterUrl, { source: why });
    const r = await krun(['run', '--', 'sh', '-c', 'echo app ran'], {
      cleanEnv: { ...env, KRUN_GOOGLE_TOKENS: 'federated' },
    });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes(`error: env KRUN_GOOGLE_TOKENS needs a GKE cluster: ${why}\n`), r.stderr);
  });

  test('a private GKE cluster reached through the gateway keeps its identity: the STS exchange works', async () => {
    // A project whose only cluster's endpoint is unreachable from here, registered in the project's fleet
    const project = 'private-proj';
    const number = '864202468642';
    gcp.state.addProject({ projectId: project, projectNumber: number });
    const cluster = gcp.state.addCluster({
      projectId: project,
      location: 'us-west1',
      name: 'private',
      kube: plane.access,
    });
    cluster.endpoint = '127.0.0.1:1';
    const link = `projects/${project}/locations/us-west1/clusters/private`;
    gcp.state.addMembership({ projectId: project, name: 'private-member', cluster: link });
    const url = `https://container.googleapis.com/v1/${link}`;
    const pool = `${project}.svc.id.goog`;
    const { ns, dir, env } = await workload('roles/gkehub.gatewayEditor', project, {
      PROJECT_ID: project,
      PROJECT_NUMBER: number,
      KRUN_GOOGLE_TOKENS: 'federated',
    });
    const printed = await krun(['run', '--print-config', '-o', 'json'], { cleanEnv: env });
    assert.equal(printed.status, 0, printed.stderr);
    const config = JSON.parse(printed.stdout);
    assert.deepEqual(config.clusterUrl, { value: url, source: 'GKE discovery' });
    assert.deepEqual([config.clusterName.value, config.clusterLocation.value], ['private', 'us-west1']);
    const r = await krun(['run', '--', '/bin/true'], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /"message":"GKE cluster API unreachable; trying the next candidate"/);
    const gateway = `${gcp.endpoints.connectgateway}/v1/projects/${number}/locations/global/gkeMemberships/private-member`;
    assert.ok(r.stderr.includes(`"server":"${gateway}"`), r.stderr);
    assert.ok(
      r.stderr.includes(`"audience":"identitynamespace:${pool}:${url}"`),
      `the STS audience names the GKE cluster: ${r.stderr}`,
    );
    const federated = verifyAccessToken(
      gcp.accessTokenKey,
      await readFile(join(dir, ISTIO_TOKEN_DIR, 'google-federated-token'), 'utf8'),
    );
    assert.equal(federated?.member, `serviceAccount:${pool}[${ns}/default]`);
  });
});
