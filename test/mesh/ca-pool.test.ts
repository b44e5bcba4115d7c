// The CAS signer (CA_POOL) against the real kube-apiserver and the emulated STS and Certificate Authority Service:
// krun run exchanges the workload's ServiceAccount token for a federated token, sends a CSR for its SPIFFE id to the
// pool (REFLECTED_SPIFFE: the pool takes the id from that token), and writes GKE's workload-certificate layout with
// exact modes; the certificate is reused while fresh and renewed at 80% of its lifetime.
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { spiffeId, WORKLOAD_CERT_DIR, workloadCertificateTask } from '../../src/lib/mesh/workload-cert.ts';
import { krun, spawnKrun } from '../support/cli.ts';
import { testContext } from '../support/context.ts';
import { rootCertOf } from '../support/control-plane/istio.ts';
import { freePort } from '../support/control-plane/ports.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import type { CaPool } from '../support/gcp/state.ts';
import { gcpTestbed, gkeWorkloadNamespace } from '../support/gcp/testbed.ts';
import { launcherCase } from '../support/launcher-case.ts';
import { ManualClock, refreshUntilEnd } from '../support/manual-clock.ts';
import { x509 } from '../support/pki.ts';
import { assertLogOrder } from './support/log-order.ts';

const PROJECT = 'cas-proj';
const TD = `${PROJECT}.svc.id.goog`;
const DAY_MS = 24 * 3600 * 1000;
const ROLE = 'roles/privateca.workloadCertificateRequester';
const testbed = await gcpTestbed('ca-pool', {
  projectId: PROJECT,
  projectNumber: '135792468013',
  region: 'us-central1',
});
const { plane, kube, gcp, work } = testbed;
let pool: CaPool;

before(async () => {
  gcp.state.addCluster({ name: 'mesh', location: 'us-central1', kube: plane.access });
  pool = await gcp.state.addCaPool({ location: 'us-central1', name: 'mesh' });
});

/** A namespace whose Google service account may create its tokens; `granted` gives its KSA the pool's role. */
async function workload(granted: boolean, extra: Record<string, string> = {}) {
  const ns = await gkeWorkloadNamespace(testbed, 'cas', PROJECT);
  if (granted) gcp.state.grant(pool.name, ROLE, `serviceAccount:${TD}[${ns}/default]`);
  const { dir, env } = await launcherCase(work, {
    ...gcp.env(),
    K_SERVICE: 'fortio',
    KRUN_MESH_MODE: 'none',
    CA_POOL: pool.name,
    ...extra,
  });
  return { ns, dir, env, certs: join(dir, WORKLOAD_CERT_DIR) };
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const pemBlocks = (text: string) => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];

describe('krun run with CA_POOL', () => {
  test('writes the workload certificate for the SPIFFE id, chained to the pool root, with exact modes', async () => {
    const { ns, dir, env, certs } = await workload(true);
    const r = await krun(['run', '--', 'sh', '-c', 'ls "$KRUN_BASE_DIR/var/run/secrets/workload-spiffe-credentials"'], {
      cleanEnv: env,
    });
    assert.equal(r.status, 0, r.stderr);
    // The files are there before the app starts
    assert.equal(r.stdout, 'ca_certificates.pem\ncertificates.pem\nprivate_key.pem\n');
    assert.equal(await mode(certs), 0o755);
    assert.equal(await mode(join(certs, 'certificates.pem')), 0o644);
    assert.equal(await mode(join(certs, 'private_key.pem')), 0o600);
    assert.equal(await mode(join(certs, 'ca_certificates.pem')), 0o644);
    // The three are swapped together (kubelet's atomic layout)
    assert.equal(await readlink(join(certs, 'private_key.pem')), '..data/private_key.pem');

    const id = `spiffe://${TD}/ns/${ns}/sa/default`;
    const chain = pemBlocks(await readFile(join(certs, 'certificates.pem'), 'utf8'));
    assert.equal(chain.length, 2);
    const leaf = new X509Certificate(chain[0] ?? '');
    assert.equal(leaf.subjectAltName, `URI:${id}`);
    assert.equal(chain[1], pool.ca.certPem);
    assert.equal(await readFile(join(certs, 'ca_certificates.pem'), 'utf8'), pool.ca.certPem);
    const root = new X509Certificate(pool.ca.certPem);
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), 'the leaf chains to the pool root');
    assert.equal(leaf.ca, false);
    const key = createPrivateKey(await readFile(join(certs, 'private_key.pem'), 'utf8'));
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.ok(leaf.checkPrivateKey(key));
    assert.equal(leaf.validToDate.getTime() - leaf.validFromDate.getTime(), DAY_MS);
    // The leaf's usages are the CSR's: digitalSignature and keyEncipherment, a TLS server and client
    const parsed = new x509.X509Certificate(chain[0] ?? '');
    const usages = parsed.getExtension(x509.KeyUsagesExtension)?.usages;
    assert.equal(usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    assert.deepEqual(leaf.keyUsage, [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);

    // What the pool received: the public API's pemCsr (with the SPIFFE SAN), REFLECTED_SPIFFE, a day, as the KSA
    const issued = pool.issued.at(-1);
    assert.equal(issued?.member, `serviceAccount:${TD}[${ns}/default]`);
    assert.match(issued?.id ?? '', /^csr-workload-[a-z0-9]{8}$/);
    assert.deepEqual(Object.keys(issued?.request ?? {}).sort(), ['lifetime', 'pemCsr', 'subjectMode']);
    assert.equal(issued?.request.subjectMode, 'REFLECTED_SPIFFE');
    assert.equal(issued?.request.lifetime, '86400s');
    const csr = new x509.Pkcs10CertificateRequest(String(issued?.request.pemCsr));
    const csrSan = new x509.SubjectAlternativeNameExtension(csr.getExtension('2.5.29.17')?.rawData ?? new Uint8Array());
    assert.deepEqual(csrSan.names.toJSON(), [{ type: 'url', value: id }]);

    // Logged without a token or the key
    assert.match(r.stderr, /"message":"issued the workload certificate"/);
    assert.doesNotMatch(r.stderr, /ya29\.|eyJ|PRIVATE KEY/);

    // A second run reuses the fresh certificate: same files, no new request
    const count = pool.issued.length;
    const version = await readlink(join(certs, '..data'));
    const again = await krun(['run', '--', 'true'], { cleanEnv: env });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /"message":"reusing the workload certificate"/);
    assert.equal(pool.issued.length, count);
    assert.equal(await readlink(join(certs, '..data')), version);
    assert.ok(dir);
  });

  test('the real pilot-agent (proxyless) serves the pool certificate, and after a renewal the new one', async (t) => {
    const { ns, dir, env, certs } = await workload(true, {
      KRUN_MESH_MODE: 'proxyless',
      KRUN_PILOT_AGENT: plane.fixtures.pilotAgent,
      KRUN_ENVOY: join(work, 'no-envoy'),
      XDS_ADDR: plane.istiod.secureGrpcAddress,
      KRUN_MESH_STATUS_PORT: String(await freePort()),
      KRUN_ISTIO_TOKEN_AUDIENCE: 'istio-ca',
    });
    const email = `k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`;
    await kube.grant(
      ns,
      'krun-root',
      [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['istio-ca-root-cert'], verbs: ['get'] }],
      [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: email }],
    );
    await rootCertOf(kube, ns);
    const script = `while [ ! -e ${dir}/done ]; do sleep 0.1; done; cat "$KRUN_MESH_CERT_CHAIN"`;
    pool.maximumLifetimeSeconds = 10;
    t.after(() => {
      pool.maximumLifetimeSeconds = undefined;
    });
    const run = spawnKrun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    await run.waitForLog('"message":"app started"', 60_000);
    assertLogOrder(run.stderr(), ['issued the workload certificate', 'pilot-agent ready', 'app started']);
    // The agent read krun's files and gave the app the pool's leaf, not one from istiod
    assert.match(run.stderr(), /read certificate from file/);
    const leafIn = async (path: string) => new X509Certificate(pemBlocks(await readFile(path, 'utf8'))[0] ?? '');
    const served = join(dir, 'var/run/secrets/istio.io/cert-chain.pem');
    const first = await leafIn(join(certs, 'certificates.pem'));
    assert.equal((await leafIn(served)).serialNumber, first.serialNumber);
    assert.equal(first.subjectAltName, `URI:spiffe://${TD}/ns/${ns}/sa/default`);
    // When krun's loop renews it (at 80% of the 10 s the pool's policy allows)
    await waitFor(
      'a renewed certificate',
      async () =>
        (await leafIn(join(certs, 'certificates.pem'))).serialNumber !== first.serialNumber ? true : undefined,
      { timeoutMs: 30_000 },
    );
    const second = await leafIn(join(certs, 'certificates.pem'));
    // Then pilot-agent is restarted (proxyless, it does not reload the files) and serves the new one
    await waitFor(
      'the agent to serve the renewed certificate',
      async () => ((await leafIn(served).catch(() => first)).serialNumber === second.serialNumber ? true : undefined),
      { timeoutMs: 30_000 },
    );
    assert.match(run.stderr(), /"message":"restarting pilot-agent: the workload certificate was renewed"/);
    assert.doesNotMatch(run.stderr(), /exited unexpectedly/);
    await writeFile(join(dir, 'done'), '');
    const r = await run.exited;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(new X509Certificate(pemBlocks(r.stdout)[0] ?? '').serialNumber, second.serialNumber);
    assert.equal(pool.issued.filter((c) => c.member.endsWith(`[${ns}/default]`)).length >= 2, true);
  });

  test('KRUN_CA_KEY_TYPE=rsa gives an RSA 2048 key', async () => {
    const { env, certs } = await workload(true, { KRUN_CA_KEY_TYPE: 'rsa' });
    const r = await krun(['run', '--', 'true'], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    const key = createPrivateKey(await readFile(join(certs, 'private_key.pem'), 'utf8'));
    assert.equal(key.asymmetricKeyType, 'rsa');
    assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    const leaf = new X509Certificate(pemBlocks(await readFile(join(certs, 'certificates.pem'), 'utf8'))[0] ?? '');
    assert.ok(leaf.checkPrivateKey(key));
  });

  test('without the role on the pool krun stops before the app, naming the role and the gcloud command', async () => {
    const { ns, env, certs } = await workload(false);
    const r = await krun(['run', '--', 'sh', '-c', 'echo app ran'], { cleanEnv: env });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    const member = `serviceAccount:${TD}[${ns}/default]`;
    assert.ok(
      r.stderr.includes(`error: forbidden: ${member} may not request workload certificates from ${pool.name}`),
      r.stderr,
    );
    assert.ok(
      r.stderr.includes(
        `gcloud privateca pools add-iam-policy-binding mesh --project ${PROJECT} --location us-central1 --role ${ROLE} --member '${member}'`,
      ),
      r.stderr,
    );
    assert.doesNotMatch(r.stderr, /ya29\.|eyJ/);
    await assert.rejects(stat(certs), /ENOENT/);
  });

  test('bad settings are usage errors', async () => {
    const { env } = await workload(false);
    const bad = await krun(['run', '--print-config'], { cleanEnv: { ...env, CA_POOL: 'mesh' } });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /env CA_POOL is "mesh": not a CA pool name/);
    const off = await krun(['run', '--', 'true'], { cleanEnv: { ...env, KRUN_GOOGLE_TOKENS: 'off' } });
    assert.equal(off.status, 2);
    assert.match(off.stderr, /env CA_POOL needs the federated token, but env KRUN_GOOGLE_TOKENS is off/);
    const key = await krun(['run', '--print-config'], { cleanEnv: { ...env, KRUN_CA_KEY_TYPE: 'dsa' } });
    assert.equal(key.status, 2);
    assert.match(key.stderr, /env KRUN_CA_KEY_TYPE is "dsa": not one of ec, rsa/);
  });
});

describe('the workload certificate in-process', () => {
  test('is renewed at 80% of its lifetime with the injected clock, and reused only before that', async (t) => {
    const ns = await kube.createNamespace('cas-renew');
    gcp.state.grant(pool.name, ROLE, `serviceAccount:${TD}[${ns}/app]`);
    const dir = join(work, ns);
    const tokenFile = join(dir, 'federated-token');
    await mkdir(dir, { recursive: true });
    await writeFile(tokenFile, gcp.state.accessToken(`serviceAccount:${TD}[${ns}/app]`).token, { mode: 0o600 });
    // A directory left with a bad mode (the original's 0660-style) is repaired
    await mkdir(join(dir, WORKLOAD_CERT_DIR), { recursive: true, mode: 0o700 });
    const clock = new ManualClock(Date.now());
    const ctx = testContext({ clock });
    const options = {
      baseDir: dir,
      pool: pool.name,
      keyType: 'ec' as const,
      trustDomain: TD,
      namespace: ns,
      serviceAccount: 'app',
      tokenFile,
      // Sidecar mode: the proxy user (group 1337) reads the key
      proxyGroup: 1337,
      env: gcp.env(),
      clock,
      log: ctx.log,
    };
    const certs = join(dir, WORKLOAD_CERT_DIR);
    const task = workloadCertificateTask(options);
    const start = clock.now().getTime();
    const first = await task();
    assert.equal(first, start + 0.8 * DAY_MS);
    assert.equal(await mode(certs), 0o755);
    const keyStat = await stat(join(certs, 'private_key.pem'));
    assert.equal(keyStat.mode & 0o777, 0o640);
    assert.equal(keyStat.gid, 1337);
    const leafOf = async () =>
      new X509Certificate(pemBlocks(await readFile(join(certs, 'certificates.pem'), 'utf8'))[0] ?? '');
    const firstLeaf = await leafOf();
    assert.equal(firstLeaf.subjectAltName, `URI:${spiffeId(TD, ns, 'app')}`);

    // A restarted krun reuses it before 80% of its lifetime (with the clock there) and not after: the original
    // accepted certificates expired up to 5 minutes ago
    const count = pool.issued.length;
    const due = await workloadCertificateTask({ ...options, clock: new ManualClock(start + 0.79 * DAY_MS) })();
    assert.equal(pool.issued.length, count);
    assert.ok(Math.abs(due - (start + 0.8 * DAY_MS)) <= 1000, `due ${due - start}`);

    refreshUntilEnd(t, task, first, clock, ctx.log);
    await waitFor('the renewal loop to sleep', async () => (clock.pending === 1 ? true : undefined));
    assert.equal(clock.requested.at(-1), 0.8 * DAY_MS);
    clock.advance(0.8 * DAY_MS);
    await waitFor('a renewed certificate', async () =>
      (await leafOf()).serialNumber !== firstLeaf.serialNumber ? true : undefined,
    );
    assert.equal(pool.issued.length, count + 1);
    assert.ok(
      (await leafOf()).checkPrivateKey(createPrivateKey(await readFile(join(certs, 'private_key.pem'), 'utf8'))),
    );
    const late = await workloadCertificateTask({ ...options, clock: new ManualClock(start + 0.81 * DAY_MS) })();
    assert.equal(pool.issued.length, count + 2);
    assert.ok(late > start + 0.81 * DAY_MS);
    assert.doesNotMatch(ctx.stderr(), /ya29\.|PRIVATE KEY/);
  });
});
