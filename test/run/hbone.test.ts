// krun run's HBONE port, end to end: it opens only once the app is ready, proxies plain requests to the app,
// tunnels /_hbone/<name> to the configured PORT_<name> targets (and nothing else), and closes with the app.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { echo, startTarget } from '../hbone/support.ts';
import { assertLogOrder } from '../mesh/support/log-order.ts';
import { krun, spawnKrun } from '../support/cli.ts';
import { freePort } from '../support/control-plane/ports.ts';
import { startGcpEmulator } from '../support/gcp/index.ts';
import { createCertificateAuthority, writePem } from '../support/pki.ts';

const dir = await mkdtemp(join(tmpdir(), 'krun-run-hbone-'));
after(() => rm(dir, { recursive: true, force: true }));

function get(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = connect(url);
    session.on('error', reject);
    const req = session.request({ ':path': path });
    let body = '';
    let status = 0;
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    req.on('error', reject);
    req.end();
  });
}

test('krun run opens HBONE after the app is ready, proxies to it, and tunnels only to allow-listed targets', async (t) => {
  // Given a TCP echo target named by PORT_echo, and an app that serves HTTP on its port after a delay
  const target = await startTarget(echo);
  t.after(() => target.close());
  const [appPort, hbonePort] = await Promise.all([freePort(), freePort()]);
  const app = `setTimeout(() => require('http').createServer((q, s) => s.end('hello from the app ' + q.url)).listen(${appPort}, '127.0.0.1'), 300); process.on('SIGTERM', () => process.exit(0))`;
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    MESH_BASE_DIR: dir,
    PORT_http: String(appPort),
    PORT_echo: String(target.port),
    KRUN_HBONE_PORT: `127.0.0.1:${hbonePort}`,
  };
  const p = spawnKrun(['run', '--', process.execPath, '-e', app], { cleanEnv: env });
  t.after(() => p.child.kill('SIGKILL'));
  // When krun is up
  await p.waitForLog('HBONE listening');
  // HBONE opens only after the app is ready (both logged, in that order)
  assertLogOrder(p.stderr(), ['app ready', 'HBONE listening']);
  const url = `http://127.0.0.1:${hbonePort}`;
  // Then a plain request reaches the app through the reverse proxy
  assert.deepEqual(await get(url, '/greeting?x=1'), { status: 200, body: 'hello from the app /greeting?x=1' });
  // And /_hbone/echo is a byte-exact tunnel to the PORT_echo target
  const data = randomBytes(256 * 1024);
  const tunnel = await krun(['hbone', `${url}/_hbone/echo`], {
    input: data,
    cleanEnv: { PATH: process.env.PATH, HOME: dir },
  });
  assert.equal(tunnel.status, 0, tunnel.stderr);
  assert.ok(tunnel.stdoutBytes.equals(data), 'the tunnel returns exactly the bytes sent');
  // And an unknown target is refused
  const refused = await get(url, '/_hbone/9999');
  assert.equal(refused.status, 404);
  // When krun is told to stop, the app stops and the port closes
  p.child.kill('SIGTERM');
  const r = await p.exited;
  assert.equal(r.status, 0, r.stderr);
  await assert.rejects(get(url, '/'), /ECONNREFUSED/);
});

test('outside Cloud Run, krun run serves HBONE over TLS and requires a JWT from the configured issuer', async (t) => {
  // Given a TLS certificate for the workload and an identity provider (the emulator's issuer)
  const gcp = await startGcpEmulator();
  t.after(() => gcp.stop());
  const ca = await createCertificateAuthority('krun-test-vm-ca');
  const leaf = await ca.issue({ commonName: 'vm', hosts: ['127.0.0.1'] });
  const [cert, key, caFile] = ['cert.pem', 'key.pem', 'ca.pem'].map((f) => join(dir, f)) as [string, string, string];
  writePem(cert, leaf.chainPem);
  writePem(key, leaf.keyPem);
  writePem(caFile, ca.certPem);
  const target = await startTarget(echo);
  t.after(() => target.close());
  const hbonePort = await freePort();
  const audience = `https://127.0.0.1:${hbonePort}`;
  const allowed = 'operator@krun-test-project.iam.gserviceaccount.com';
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    MESH_BASE_DIR: dir,
    PORT_http: '-',
    PORT_echo: String(target.port),
    KRUN_HBONE_PORT: `127.0.0.1:${hbonePort}`,
    KRUN_HBONE_TLS_CERT: cert,
    KRUN_HBONE_TLS_KEY: key,
    KRUN_HBONE_JWT_ISSUER: gcp.issuer.iss,
    KRUN_HBONE_JWKS_URI: gcp.issuer.jwksUri,
    KRUN_HBONE_JWT_AUDIENCE: audience,
    KRUN_HBONE_PRINCIPALS: allowed,
  };
  const p = spawnKrun(['run', '--', 'sleep', '30'], { cleanEnv: env });
  t.after(() => p.child.kill('SIGKILL'));
  await p.waitForLog('HBONE listening');
  const client = { PATH: process.env.PATH, HOME: dir };
  const tunnel = (token: string) =>
    krun(['hbone', '--ca-file', caFile, '--token', token, `${audience}/_hbone/echo`], {
      input: 'ping',
      cleanEnv: client,
    });
  // When an allowed principal tunnels with a token for this audience, the bytes come back
  const ok = await tunnel(gcp.state.idToken(allowed, audience));
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, 'ping');
  // And another principal, or a token for another audience, is refused (255, the reason on stderr)
  const other = await tunnel(gcp.state.idToken('intruder@krun-test-project.iam.gserviceaccount.com', audience));
  assert.equal(other.status, 255);
  assert.match(other.stderr, /403/);
  const wrongAudience = await tunnel(gcp.state.idToken(allowed, 'https://elsewhere'));
  assert.equal(wrongAudience.status, 255);
  assert.match(wrongAudience.stderr, /401/);
});
