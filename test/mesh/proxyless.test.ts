// `krun run` in proxyless mode against the real istiod and pilot-agent: the agent gets a workload certificate
// for the workload's ServiceAccount before the app starts, the app sees it, and the agent is stopped after the app.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { krun } from '../support/cli.ts';
import { rootCertOf } from '../support/control-plane/istio.ts';
import { freePort } from '../support/control-plane/ports.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { TestKube } from '../support/kube.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const work = await mkdtemp(join(tmpdir(), 'krun-mesh-'));
after(() => rm(work, { recursive: true, force: true }));

/** A namespace with a ServiceAccount `app`, and a launcher identity with just the RBAC krun run needs. */
async function workload() {
  const ns = await kube.createNamespace('krun-mesh');
  await kube.createServiceAccount(ns, 'app');
  await kube.createServiceAccount(ns, 'launcher');
  await kube.grant(
    ns,
    'krun-launcher',
    [
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['app'], verbs: ['create'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['istio-ca-root-cert'], verbs: ['get'] },
    ],
    [{ kind: 'ServiceAccount', name: 'launcher', namespace: ns }],
  );
  const { token } = await kube.requestToken(ns, 'launcher', [], 3600);
  const kubeconfig = writeKubeconfig(join(work, `${ns}.kubeconfig`), plane.access, ns, token);
  return { ns, kubeconfig };
}

describe('krun run, proxyless mesh', () => {
  test('the app starts after pilot-agent got a certificate for its ServiceAccount, chained to istiod', async () => {
    // Given a workload namespace where istiod published its root, and no Envoy on this machine
    const { ns, kubeconfig } = await workload();
    const root = new X509Certificate(await rootCertOf(kube, ns));
    const dir = join(work, ns);
    await mkdir(join(dir, 'home'), { recursive: true });
    const env = {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'),
      MESH_BASE_DIR: dir,
      PORT_http: '-',
      KRUN_HBONE_PORT: '-',
      KRUN_SSH_PORT: '-',
      KUBECONFIG: kubeconfig,
      WORKLOAD_SERVICE_ACCOUNT: 'app',
      KRUN_PILOT_AGENT: plane.fixtures.pilotAgent,
      KRUN_ENVOY: join(dir, 'no-envoy'),
      XDS_ADDR: plane.istiod.secureGrpcAddress,
      KRUN_MESH_STATUS_PORT: String(await freePort()),
    };
    // When krun runs an app that copies what it sees
    const script = [
      `cat "$KRUN_MESH_CERT_CHAIN" > ${dir}/seen-chain.pem`,
      `test -s "$KRUN_MESH_KEY" && test -s "$GRPC_XDS_BOOTSTRAP" && echo ok > ${dir}/seen-files`,
      `echo "$KRUN_MESH_MODE $GRPC_XDS_BOOTSTRAP" > ${dir}/seen-env`,
    ].join('; ');
    const r = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    // Then the mode was decided and logged with its reason, and the app ran after the agent was ready
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /"message":"mesh mode proxyless: no Envoy binary"/);
    const order = ['pilot-agent ready', 'app started', 'app exited', 'pilot-agent stopped'].map((m) =>
      r.stderr.indexOf(`"message":"${m}"`),
    );
    assert.ok(
      order.every((i, k) => i >= 0 && (k === 0 || i > (order[k - 1] ?? 0))),
      `ready < app started < app exited < agent stopped: ${order.join(',')}\n${r.stderr}`,
    );
    assert.equal(await readFile(join(dir, 'seen-files'), 'utf8'), 'ok\n');
    assert.equal(
      await readFile(join(dir, 'seen-env'), 'utf8'),
      `proxyless ${join(dir, 'etc/istio/proxy/grpc-bootstrap.json')}\n`,
    );
    // And the certificate names the namespace and ServiceAccount and is signed by istiod's root
    const leaf = new X509Certificate(await readFile(join(dir, 'seen-chain.pem'), 'utf8'));
    assert.equal(leaf.subjectAltName, `URI:spiffe://cluster.local/ns/${ns}/sa/app`);
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), 'leaf is signed by the istiod root');
    // And the injector's files are in place
    assert.equal(
      await readFile(join(dir, 'etc/istio/pod/labels'), 'utf8'),
      `app="${ns}"\nsecurity.istio.io/tlsMode="istio"\nservice.istio.io/canonical-name="${ns}"\nservice.istio.io/canonical-revision="latest"\nversion="latest"`,
    );
    assert.equal(await readFile(join(dir, 'var/run/secrets/istio/root-cert.pem'), 'utf8'), root.toString());
  });

  test('an unreachable istiod is a timeout with the agent’s log tail, and the app never starts', async () => {
    const { kubeconfig, ns } = await workload();
    await rootCertOf(kube, ns);
    const dir = join(work, ns);
    await mkdir(join(dir, 'home'), { recursive: true });
    const env = {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'),
      MESH_BASE_DIR: dir,
      PORT_http: '-',
      KRUN_HBONE_PORT: '-',
      KRUN_SSH_PORT: '-',
      KUBECONFIG: kubeconfig,
      WORKLOAD_SERVICE_ACCOUNT: 'app',
      KRUN_PILOT_AGENT: plane.fixtures.pilotAgent,
      KRUN_MESH_MODE: 'proxyless',
      XDS_ADDR: `127.0.0.1:${await freePort()}`,
      KRUN_MESH_STATUS_PORT: String(await freePort()),
      KRUN_STARTUP_TIMEOUT: '3',
    };
    const r = await krun(['run', '--', 'sh', '-c', `touch ${dir}/app-ran`], { cleanEnv: env });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /"message":"mesh mode proxyless: asked for by env KRUN_MESH_MODE"/);
    assert.match(r.stderr, /error: pilot-agent was not ready after 3 s \(waited for the workload certificate in /);
    assert.match(r.stderr, /--- last lines of pilot-agent ---/);
    await assert.rejects(readFile(join(dir, 'app-ran')), { code: 'ENOENT' });
  });
});
