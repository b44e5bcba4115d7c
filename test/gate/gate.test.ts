// `krun gate` end to end: mesh TLS clients (Node's tls and openssl s_client) → the gate (the built CLI) → the
// emulated Cloud Run front end, which checks the gate's ID token and run.invoker → a real `krun run`'s HBONE server →
// the app's mutual-TLS port. The routes come from what `krun register` puts in the real API server; the TLS session
// is the client's and the app's alone (the client verifies the app's certificate, the app the client's).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stopInstance } from '../operator/support.ts';
import { run, startKrunSsh } from '../ssh/support.ts';
import { krun } from '../support/cli.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';
import { exchange, meshPki, type RunningGate, refusedHandshake, startApp, startGateCli } from './support.ts';

const PROJECT = 'gate-proj';
const GATE_SA = 'krun-gate@gate-proj.iam.gserviceaccount.com';
const { plane, kube, gcp, work } = await gcpTestbed('gate', {
  projectId: PROJECT,
  projectNumber: '424242424242',
  serviceAccount: GATE_SA,
});
const ns = await kube.createNamespace('gate');
const HOST = `fortio.${ns}.svc.cluster.local`;
const SNI = `outbound_.8080_._.${HOST}`;
const MAX_STREAMS = 4;
const kubeconfig = writeKubeconfig(join(work, 'admin.kubeconfig'), plane.access, ns);
const pki = await meshPki(HOST);

/** `krun register NAME` with the URL given, as an operator would run it. */
async function register(name: string, serviceUrl: string): Promise<void> {
  const r = await krun(
    ['register', name, '-n', ns, '--url', serviceUrl, '--gate-address', '10.20.30.40', '--kubeconfig', kubeconfig],
    { cleanEnv: { PATH: process.env.PATH, HOME: work } },
  );
  assert.equal(r.status, 0, r.stderr);
}

const app = await startApp(pki);
// The workload: krun run on Cloud Run, its mesh port (the app's mTLS listener) as tunnel target `mesh`.
const instance = await startKrunSsh(join(work, 'fortio'), { PORT_mesh: `127.0.0.1:${app.port}` });
const service = gcp.state.addRunService({ name: 'fortio', backendPort: instance.hbonePort, http2: true });
gcp.state.grant(gcp.state.runServiceName(service), 'roles/run.invoker', `serviceAccount:${GATE_SA}`);
const url = gcp.state.runServiceUrls(service)[0] ?? '';
// A second service the gate may not invoke.
const locked = gcp.state.addRunService({ name: 'locked', backendPort: instance.hbonePort, http2: true });
const lockedUrl = gcp.state.runServiceUrls(locked)[0] ?? '';
await register('fortio', url);
await register('locked', lockedUrl);
gcp.metadata.attributes['cluster-name'] = 'mesh-1';
gcp.metadata.attributes['cluster-location'] = 'europe-west1';
const gate: RunningGate = await startGateCli(
  [
    '--target',
    'mesh',
    '--max-streams-per-connection',
    String(MAX_STREAMS),
    '--kubeconfig',
    kubeconfig,
    '--mesh-env-namespace',
    ns,
    '--mesh-env-interval',
    '1s',
    '--hello-timeout',
    '5m',
    '-v',
  ],
  { HOME: work, ...gcp.env() },
);

after(async () => {
  await gate.stop();
  await stopInstance(instance);
  await app.close();
});

describe('krun gate', () => {
  test('Node TLS clients reach the app by SNI: bytes and mutual TLS end to end, tunnels share connections', async () => {
    // Given the front end's connection count before
    const before = gcp.frontEnd.connectionsAccepted();
    const n = 10;
    const payloads = Array.from({ length: n }, (_, i) => randomBytes(64 * 1024 + i));
    // When n clients connect at once, with the Istio SNI and the plain host name
    const results = await Promise.all(
      payloads.map((p, i) => exchange(gate.port, i % 2 === 0 ? SNI : HOST, HOST, pki, p)),
    );
    // Then each got its own bytes back over a TLS session with the app itself
    for (const [i, r] of results.entries()) {
      assert.equal(r.authorized, true, 'the client verified the app certificate through the gate');
      assert.equal(r.serverCn, 'fortio app');
      assert.equal(r.alpn, 'istio');
      assert.ok(r.received.equals(payloads[i] as Buffer), `tunnel ${i} bytes`);
    }
    assert.deepEqual(app.peers.slice(-n), Array(n).fill('mesh-client'), 'the app verified the mesh client');
    // and the tunnels were streams of ceil(n / max streams) HTTP/2 connections
    const connections = Math.ceil(n / MAX_STREAMS);
    assert.equal(gcp.frontEnd.connectionsAccepted() - before, connections);
    const destination = `{destination="${url}"}`;
    assert.equal(await gate.metric(`krun_gate_upstream_connects_total${destination}`), connections);
    assert.equal(await gate.metric(`krun_gate_tunnels_total${destination}`), n);
    const sent = payloads.reduce((a, p) => a + p.length, 0);
    assert.ok((await gate.metric(`krun_gate_bytes_total{destination="${url}",direction="to_service"}`)) > sent);

    // When more tunnels follow one by one
    for (let i = 0; i < 3; i++) {
      const p = randomBytes(1000);
      assert.ok((await exchange(gate.port, SNI, HOST, pki, p)).received.equals(p));
    }
    // Then they reuse the open connections
    assert.equal(gcp.frontEnd.connectionsAccepted() - before, connections);
  });

  test('openssl s_client through the gate: verified, mutual TLS, bytes back', async () => {
    const dir = join(work, 'openssl');
    await run('mkdir', ['-p', dir]);
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text, { mode: 0o600 });
      return join(dir, name);
    };
    const r = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${gate.port}`,
        '-servername',
        SNI,
        '-CAfile',
        file('ca.pem', pki.ca.certPem),
        '-cert',
        file('client.pem', pki.client.certPem),
        '-key',
        file('client.key', pki.client.keyPem),
        '-verify_hostname',
        HOST,
        '-verify_return_error',
        '-alpn',
        'istio',
        '-brief',
        '-ign_eof',
      ],
      { input: 'hello from openssl\nQUIT\n' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'hello from openssl\nQUIT\n');
    assert.match(r.stderr, /Verification: OK/);
    assert.match(r.stderr, /Peer certificate: CN = fortio app\n/);
    assert.ok(r.stderr.includes(`Verified peername: ${HOST}\n`));
    assert.equal(app.peers.at(-1), 'mesh-client');
  });

  test('an unknown SNI is refused at once, with the reason logged', async () => {
    const unknown = `outbound_.8080_._.nope.${ns}.svc.cluster.local`;
    assert.equal(await refusedHandshake(gate.port, unknown), 'ECONNRESET');
    const line = await waitFor('the refusal in the log', async () =>
      gate.logs('connection closed').find((l) => l.sni === unknown),
    );
    assert.equal(line.reason, 'unknown-sni');
    assert.equal(line.detail, `no registration for nope.${ns}.svc.cluster.local (krun register nope -n ${ns})`);
    assert.equal(await gate.metric('krun_gate_rejected_total{reason="unknown-sni"}'), 1);
  });

  test('input that is not a ClientHello is closed with a logged reason', async () => {
    const send = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const socket = connect(gate.port, '127.0.0.1', () => socket.write(bytes));
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.resume();
      });
    await send(Buffer.from('GET / HTTP/1.1\r\nHost: gate\r\n\r\n'));
    await send(Buffer.from([0x16, 3, 1, 0, 8, 2, 0, 0, 4, 3, 3, 0, 0]));
    await send(Buffer.from([0x16, 3, 1, 0x7f, 0xff]));
    const reasons = await waitFor('three refusals in the log', async () => {
      const found = gate.logs('connection closed').filter((l) => l.reason !== 'unknown-sni');
      return found.length >= 3 ? found : undefined;
    });
    assert.deepEqual(
      reasons.map((l) => [l.reason, l.detail]),
      [
        ['not-tls', 'plain text (starts with "GET / HTTP/1.1..")'],
        ['malformed', 'handshake message type 2 where a ClientHello (1) must come first'],
        ['oversized', 'a record of 32767 bytes (limit 16384)'],
      ],
    );
  });

  test('a service the gate may not invoke: the client is closed and the log says which grant is missing', async () => {
    const sni = `outbound_.8080_._.locked.${ns}.svc.cluster.local`;
    assert.equal(await refusedHandshake(gate.port, sni), 'ECONNRESET');
    const line = await waitFor('the refusal in the log', async () =>
      gate.logs('tunnel not opened').find((l) => l.sni === sni),
    );
    assert.equal(
      line.error,
      `the gate's identity may not invoke ${lockedUrl}/_hbone/mesh (HTTP 403): grant it roles/run.invoker on the service`,
    );
    assert.equal(await gate.metric(`krun_gate_tunnel_errors_total{destination="${lockedUrl}",reason="403"}`), 1);
  });

  test('mesh-env is written and kept reconciled: a stale root is put back, other keys are kept', async () => {
    const path = `/api/v1/namespaces/${ns}/configmaps/mesh-env`;
    const roots = await kube.get<{ data: Record<string, string> }>(
      '/api/v1/namespaces/istio-system/configmaps/istio-ca-root-cert',
    );
    const expected = {
      CAROOT_ISTIOD: roots.data['root-cert.pem'],
      CLUSTER_LOCATION: 'europe-west1',
      CLUSTER_NAME: 'mesh-1',
      PROJECT_ID: PROJECT,
      PROJECT_NUMBER: '424242424242',
    };
    const first = await waitFor(
      'mesh-env',
      async () => (await kube.get<{ data?: Record<string, string> }>(path).catch(() => undefined))?.data,
    );
    assert.deepEqual(first, expected);
    // When an operator's key is added and the root goes stale
    await kube.request(
      'PATCH',
      path,
      { data: { CAROOT_ISTIOD: 'stale', PORT_x: '9000' } },
      {
        contentType: 'application/merge-patch+json',
      },
    );
    // Then the next round puts the root back and keeps the operator's key
    const fixed = await waitFor('the root put back', async () => {
      const data = (await kube.get<{ data: Record<string, string> }>(path)).data;
      return data.CAROOT_ISTIOD === expected.CAROOT_ISTIOD ? data : undefined;
    });
    assert.deepEqual(fixed, { ...expected, PORT_x: '9000' });
  });

  test('a gate whose identity may not list Services does not start, and says which grant is missing', async () => {
    await kube.createServiceAccount(ns, 'no-rights');
    const { token } = await kube.requestToken(ns, 'no-rights', []);
    const limited = writeKubeconfig(join(work, 'limited.kubeconfig'), plane.access, ns, token);
    const r = await krun(
      ['gate', '--address', '127.0.0.1', '--port', '0', '--admin-port', '0', '--kubeconfig', limited],
      {
        cleanEnv: { PATH: process.env.PATH, HOME: work, CLOUD_PLATFORM: 'none' },
      },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /error: the gate may not list Services cluster-wide: forbidden: /);
    assert.match(r.stderr, /Try:\n.*krun setup-cluster \(its ClusterRole krun-gate grants get, list and watch/);
  });

  test('SIGTERM: not ready, no new connections, open tunnels finish, then exit 0', async () => {
    assert.equal((await gate.admin('/readyz')).status, 200);
    assert.equal((await gate.admin('/healthz')).body, 'ok\n');
    // Given an open tunnel
    const { connect: tlsConnect, checkServerIdentity } = await import('node:tls');
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: gate.port,
      servername: SNI,
      ca: pki.ca.certPem,
      key: pki.client.keyPem,
      cert: pki.client.chainPem,
      checkServerIdentity: (_n, cert) => checkServerIdentity(HOST, cert),
    });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const echoed = async (text: string) => {
      socket.write(text);
      const [chunk] = (await new Promise((resolve) => socket.once('data', (c) => resolve([c])))) as Buffer[];
      return String(chunk);
    };
    assert.equal(await echoed('before'), 'before');
    // When the gate is told to stop
    gate.krun.child.kill('SIGTERM');
    await gate.krun.waitForLog('"draining"');
    // Then it is not ready, takes no new connection, and the open tunnel still works
    assert.equal((await gate.admin('/readyz')).status, 503);
    assert.equal(await refusedHandshake(gate.port, SNI), 'ECONNREFUSED');
    assert.equal(await echoed('during'), 'during');
    // and once the tunnel ends, the gate exits cleanly
    socket.end();
    const exited = await gate.krun.exited;
    assert.equal(exited.status, 0, exited.stderr);
    assert.ok(gate.logs('gate stopped').length === 1);
  });
});
