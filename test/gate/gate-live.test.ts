// `krun gate` while things change around it, against the real API server and the Google Cloud emulator: registrations
// that come and go are routed (and refused) as their watch events arrive, with the gate's API connection behind a
// proxy that cuts it; the gate's ID tokens expire within seconds and tunnels keep working on fresh ones; a flood of
// bad connections leaves a bounded log and exact counters; mesh-env gets managed Istio's tenant; and HTTP/2 CONNECT
// tunnels: refused by Cloud Run's front end (why POST is the default), working straight to krun run over TLS.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stopInstance } from '../operator/support.ts';
import { startKrunSsh } from '../ssh/support.ts';
import { krun } from '../support/cli.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';
import { exchange, meshPki, type RunningGate, refusedHandshake, startApp, startGateCli } from './support.ts';

const PROJECT = 'gate-live';
const GATE_SA = 'krun-gate@gate-live.iam.gserviceaccount.com';
/** The emulator's metadata server mints the gate's ID tokens with this lifetime. */
const TOKEN_SECONDS = 6;
const { plane, kube, gcp, work } = await gcpTestbed('gate-live', {
  projectId: PROJECT,
  projectNumber: '515151515151',
  serviceAccount: GATE_SA,
});
gcp.state.idTokenLifetimeSeconds = TOKEN_SECONDS;
const ns = await kube.createNamespace('gate-live');
const host = (name: string) => `${name}.${ns}.svc.cluster.local`;
const sni = (name: string) => `outbound_.8080_._.${host(name)}`;
const kubeconfig = writeKubeconfig(join(work, 'admin.kubeconfig'), plane.access, ns);
const pki = await meshPki(host('fortio'));

/** A TCP proxy in front of the API server that can cut every connection and refuse new ones for a while. */
interface CuttingProxy {
  readonly port: number;
  /** Cuts every open connection; refuses new ones until `resume()`. */
  cut(): void;
  resume(): void;
  close(): Promise<void>;
}

async function cuttingProxy(target: URL): Promise<CuttingProxy> {
  const open = new Set<Socket>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      refusing = true;
      for (const s of open) s.destroy();
    },
    resume() {
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const proxy = await cuttingProxy(new URL(plane.access.server));
const viaProxy = writeKubeconfig(
  join(work, 'proxied.kubeconfig'),
  { ...plane.access, server: `https://127.0.0.1:${proxy.port}` },
  ns,
);

/** A Cloud Run service in the emulator for the workload, the gate allowed to invoke it; returns its URL. */
function runService(name: string): string {
  const service = gcp.state.addRunService({ name, backendPort: instance.hbonePort, http2: true });
  gcp.state.grant(gcp.state.runServiceName(service), 'roles/run.invoker', `serviceAccount:${GATE_SA}`);
  return gcp.state.runServiceUrls(service)[0] ?? '';
}

/** `krun register` (or `--unregister`) as an operator would run it. */
async function register(name: string, url: string | undefined): Promise<void> {
  const args = url ? ['--url', url, '--gate-address', '10.20.30.40'] : ['--unregister'];
  const r = await krun(['register', name, '-n', ns, ...args, '--kubeconfig', kubeconfig], {
    cleanEnv: { PATH: process.env.PATH, HOME: work },
  });
  assert.equal(r.status, 0, r.stderr);
}

/** One mesh client's bytes through the gate and back from the app. */
async function roundTrip(gatePort: number, name: string): Promise<void> {
  const payload = randomBytes(20_000);
  const r = await exchange(gatePort, sni(name), host('fortio'), pki, payload);
  assert.equal(r.authorized, true);
  assert.ok(r.received.equals(payload), `the bytes through the tunnel to ${name}`);
}

const app = await startApp(pki);
// The workload: krun run behind the front end, its mesh port (the app's mTLS listener) as tunnel target `mesh`.
const instance = await startKrunSsh(join(work, 'fortio'), { PORT_mesh: `127.0.0.1:${app.port}` });
const fortioUrl = runService('fortio');
await register('fortio', fortioUrl);
// Managed Istio's tenant, next to mesh-env.
await kube.post(`/api/v1/namespaces/${ns}/configmaps`, {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'env-asm-managed', namespace: ns },
  data: { CLOUDRUN_ADDR: 'tenant-a.example' },
});

const gate: RunningGate = await startGateCli(
  ['--target', 'mesh', '--kubeconfig', viaProxy, '--mesh-env-namespace', ns, '--mesh-env-interval', '1s', '-v'],
  { HOME: work, ...gcp.env() },
);

after(async () => {
  await gate.stop();
  await stopInstance(instance);
  await app.close();
  await proxy.close();
});

/** The registered hosts the gate logged last. */
const registrationsLogged = () => Number(gate.logs('registrations').at(-1)?.hosts);
/** Until the gate logged `hosts` registered hosts (a registration is two: its Service and its ServiceEntry). */
const registrations = (hosts: number) =>
  waitFor(`${hosts} registered hosts`, async () => (registrationsLogged() === hosts ? true : undefined));

describe('krun gate, live', () => {
  test('registrations are followed by watch: a new one is routed, a deleted one refused', async () => {
    await roundTrip(gate.port, 'fortio');
    const before = registrationsLogged();
    // When a service is registered while the gate runs
    await register('late', runService('late'));
    // Then its watch events reach the gate (nothing lists again: the gate has no resync) and it is routed
    await registrations(before + 2);
    await roundTrip(gate.port, 'late');
    // When it is unregistered, the next connection is refused
    await register('late', undefined);
    await registrations(before);
    assert.equal(await refusedHandshake(gate.port, sni('late')), 'ECONNRESET');
    const line = gate.logs('connection closed').find((l) => l.sni === sni('late'));
    assert.equal(line?.detail, `no registration for ${host('late')} (krun register late -n ${ns})`);
  });

  test('a cut watch connection: the gate reconnects and catches up on what changed meanwhile', async () => {
    const broken = gate.logs('watch broken; reconnecting').length;
    // When the API connection is cut and the server stays unreachable for a while
    proxy.cut();
    await waitFor('the gate to notice', async () =>
      gate.logs('watch broken; reconnecting').length > broken ? true : undefined,
    );
    const before = registrationsLogged();
    await register('during', runService('during'));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(registrationsLogged(), before, 'nothing reaches the gate while the proxy refuses');
    proxy.resume();
    // Then it reconnects (with backoff: several attempts failed) and routes what was registered meanwhile
    await registrations(before + 2);
    const retries = gate.logs('watch broken; reconnecting').slice(broken);
    assert.ok(retries.length >= 2, `reconnect attempts: ${retries.length}`);
    const delays = retries.filter((l) => l.resource === '/api/v1/services').map((l) => Number(l.retryInMs));
    assert.deepEqual(
      delays,
      delays.map((_, i) => Math.min(250 * 2 ** i, 30_000)),
      'the backoff doubles',
    );
    await roundTrip(gate.port, 'during');
    await roundTrip(gate.port, 'fortio');
  });

  test('ID tokens that expire within seconds: tunnels keep working, the front end sees fresh tokens', async () => {
    await roundTrip(gate.port, 'fortio');
    const seen = gcp.frontEnd.tokensAdmitted();
    const first = seen.at(-1) ?? '';
    const { iat, exp } = JSON.parse(Buffer.from(first.split('.')[1] ?? '', 'base64url').toString()) as {
      iat: number;
      exp: number;
    };
    assert.equal(exp - iat, TOKEN_SECONDS);
    // When that token has expired
    await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 200));
    // Then the next tunnel works, with a token the front end had not seen
    await roundTrip(gate.port, 'fortio');
    const now = gcp.frontEnd.tokensAdmitted();
    assert.ok(now.length > seen.length, 'a new token was admitted');
    assert.notEqual(now.at(-1), first);
    assert.equal(await gate.metric(`krun_gate_tunnel_errors_total{destination="${fortioUrl}",reason="401"}`), 0);
    assert.equal(await gate.metric(`krun_gate_tunnel_errors_total{destination="${fortioUrl}",reason="token"}`), 0);
  });

  test('an ID token the front end refuses (401) is dropped from the cache: one retry with a fresh token works', async () => {
    const claims = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { iat: number; exp: number };
    // Given a token the gate has just fetched (the one it held has expired), far from its refresh point
    await roundTrip(gate.port, 'fortio');
    const held = claims(gcp.frontEnd.tokensAdmitted().at(-1) ?? '');
    await new Promise((r) => setTimeout(r, Math.max(0, held.exp * 1000 - Date.now()) + 200));
    await roundTrip(gate.port, 'fortio');
    const stale = gcp.frontEnd.tokensAdmitted().at(-1) ?? '';
    // Tokens are signed deterministically with whole-second iat: past that second, a new token differs.
    await new Promise((r) => setTimeout(r, Math.max(0, (claims(stale).iat + 1) * 1000 - Date.now()) + 50));
    // When the front end stops honouring the token the gate holds (still well within its lifetime)
    gcp.frontEnd.revokeAdmitted();
    // Then the next tunnel still carries the bytes, after one retry with a token the front end had not seen
    await roundTrip(gate.port, 'fortio');
    assert.deepEqual(gcp.frontEnd.tokensRefused(), [stale]);
    const fresh = gcp.frontEnd.tokensAdmitted().at(-1);
    assert.ok(fresh && fresh !== stale, 'the retry carried a new token');
    // And the refused first attempt is not reported as a failed tunnel
    assert.equal(await gate.metric(`krun_gate_tunnel_errors_total{destination="${fortioUrl}",reason="401"}`), 0);
  });

  test('a flood of bad connections: at most 10 log lines per reason a minute, every one counted', async () => {
    const metric = (reason: string) => gate.metric(`krun_gate_rejected_total{reason="${reason}"}`);
    const logged = (reason: string) => gate.logs('connection closed').filter((l) => l.reason === reason).length;
    const [unknownBefore, textBefore] = [await metric('unknown-sni'), await metric('not-tls')];
    const [unknownLogged, textLogged] = [logged('unknown-sni'), logged('not-tls')];
    const n = 300;
    const text = () =>
      new Promise<void>((resolve) => {
        const s = connect(gate.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\n\r\n'));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    for (let i = 0; i < n; i += 30) {
      await Promise.all(
        Array.from({ length: 30 }, (_, j) => (j % 2 === 0 ? refusedHandshake(gate.port, sni(`scan${i + j}`)) : text())),
      );
    }
    assert.equal((await metric('unknown-sni')) - unknownBefore, n / 2);
    assert.equal((await metric('not-tls')) - textBefore, n / 2);
    assert.ok(logged('unknown-sni') - unknownLogged <= 10, `unknown-sni lines: ${logged('unknown-sni')}`);
    assert.ok(logged('not-tls') - textLogged <= 10, `not-tls lines: ${logged('not-tls')}`);
  });

  test('mesh-env gets MESH_TENANT from env-asm-managed, and follows it', async () => {
    const path = `/api/v1/namespaces/${ns}/configmaps/mesh-env`;
    const tenant = async () => (await kube.get<{ data?: Record<string, string> }>(path).catch(() => undefined))?.data;
    assert.equal(await waitFor('MESH_TENANT', async () => (await tenant())?.MESH_TENANT), 'tenant-a.example');
    await kube.request(
      'PATCH',
      `/api/v1/namespaces/${ns}/configmaps/env-asm-managed`,
      { data: { CLOUDRUN_ADDR: 'tenant-b.example' } },
      { contentType: 'application/merge-patch+json' },
    );
    await waitFor('the new tenant', async () =>
      (await tenant())?.MESH_TENANT === 'tenant-b.example' ? true : undefined,
    );
  });

  test('HTTP/2 CONNECT: the Cloud Run front end refuses it; straight to krun run over TLS it tunnels', async () => {
    const target = `127.0.0.1:${app.port}`;
    // The workload again, serving HBONE over TLS itself (as on a VM), with a certificate the gate trusts.
    const server = await pki.ca.issue({ commonName: 'krun run', hosts: ['127.0.0.1'], usage: 'server' });
    const dir = join(work, 'direct');
    mkdirSync(dir, { recursive: true });
    const direct = await startKrunSsh(dir, {
      PORT_mesh: target,
      KRUN_VERBOSE: 'true',
      KRUN_HBONE_TLS_CERT: writeFile(dir, 'tls.crt', server.chainPem),
      KRUN_HBONE_TLS_KEY: writeFile(dir, 'tls.key', server.keyPem),
    });
    const directUrl = `https://127.0.0.1:${direct.hbonePort}`;
    await kube.post(`/api/v1/namespaces/${ns}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'direct',
        namespace: ns,
        labels: { 'krun.dev/registration': 'direct' },
        annotations: { 'krun.dev/cloud-run-url': directUrl },
      },
      spec: { ports: [{ port: 8080 }] },
    });
    const cas = writeFile(work, 'cas.pem', `${gcp.frontEnd.caPem}\n${pki.ca.certPem}`);
    const connectGate = await startGateCli(
      ['--tunnel-method', 'connect', '--target', target, '--kubeconfig', kubeconfig, '--mesh-env-namespace', 'none'],
      { HOME: work, ...gcp.env(), NODE_EXTRA_CA_CERTS: cas },
    );
    try {
      // Through Cloud Run's front end: CONNECT does not pass, and the log says to use POST
      assert.equal(await refusedHandshake(connectGate.port, sni('fortio')), 'ECONNRESET');
      const line = await waitFor('the refusal', async () => connectGate.logs('tunnel not opened')[0]);
      assert.equal(
        line.error,
        `CONNECT ${target} at ${fortioUrl}: HTTP 405, the way there does not pass HTTP/2 CONNECT (Cloud Run's front end does not); use --tunnel-method post`,
      );
      assert.equal(
        await connectGate.metric(`krun_gate_tunnel_errors_total{destination="${fortioUrl}",reason="405"}`),
        1,
      );
      // Straight to krun run: the tunnel is a CONNECT stream, and the bytes and mutual TLS go end to end
      await roundTrip(connectGate.port, 'direct');
      assert.equal(await connectGate.metric(`krun_gate_tunnels_total{destination="${directUrl}"}`), 1);
      assert.ok(
        direct.krun.stderr().includes(`"target":"${target}"`),
        "krun run's log names the CONNECT authority as the target",
      );
    } finally {
      await connectGate.stop();
      await stopInstance(direct);
    }
  });

  test('at shutdown the unlogged refusals are summed up: logged + summarised = counted', async () => {
    const counted = await gate.metric('krun_gate_rejected_total{reason="unknown-sni"}');
    await gate.stop();
    const logged = gate.logs('connection closed').filter((l) => l.reason === 'unknown-sni').length;
    const summarised = gate
      .logs('connections closed without a log line')
      .filter((l) => l.reason === 'unknown-sni')
      .reduce((a, l) => a + Number(l.count), 0);
    assert.equal(logged + summarised, counted);
    assert.ok(summarised > 0);
  });
});

function writeFile(dir: string, name: string, text: string): string {
  writeFileSync(join(dir, name), text, { mode: 0o600 });
  return join(dir, name);
}
