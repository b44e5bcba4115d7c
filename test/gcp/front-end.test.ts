// The Cloud Run front end: TLS from the test CA on real *.run.app names (kept on loopback), Cloud Run IAM on ID
// tokens, HTTP/2 cleartext forwarding with bodies streaming both ways (as HBONE needs), HTTP/1.1 with WebSocket
// upgrades, and the same from a child process that only gets the emulator's environment.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server, connect as http2Connect } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Compute } from 'google-auth-library';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { TokenIssuer } from '../support/gcp/tokens.ts';

const PROJECT = 'fe-project';
const NUMBER = '161803398874';
const RUNNER = `${NUMBER}-compute@developer.gserviceaccount.com`;

let gcp: GcpEmulator;
let h2Backend: Http2Server;
let h1Backend: Server;
let tunnelUrl = '';
let echoUrl = '';
let publicUrl = '';
let lastH2Headers: IncomingHttpHeaders = {};

function listening<T extends Server | Http2Server>(server: T): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** A minimal WebSocket echo: the handshake, then each short masked text frame back unmasked. */
function acceptWebSocket(socket: Socket, key: string): void {
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`,
  );
  socket.on('data', (frame: Buffer) => {
    const opcode = (frame[0] ?? 0) & 0x0f;
    const length = (frame[1] ?? 0) & 0x7f;
    if (opcode === 0x8) {
      socket.end(Buffer.from([0x88, 0x00]));
      return;
    }
    const mask = frame.subarray(2, 6);
    const payload = Buffer.from(frame.subarray(6, 6 + length).map((b, i) => b ^ (mask[i % 4] ?? 0)));
    const reply = Buffer.from(`echo:${payload.toString('utf8')}`);
    socket.write(Buffer.concat([Buffer.from([0x81, reply.length]), reply]));
  });
}

before(async () => {
  gcp = await startGcpEmulator({ projectId: PROJECT, projectNumber: NUMBER });
  gcp.useInThisProcess();
  // An HBONE-like h2c server: answers at once, then streams each request chunk back upper-cased.
  h2Backend = createHttp2Server();
  h2Backend.on('stream', (stream, headers) => {
    lastH2Headers = headers;
    stream.respond({ ':status': 200, 'x-backend': 'h2c' });
    stream.on('data', (chunk: Buffer) => stream.write(chunk.toString('utf8').toUpperCase()));
    stream.on('end', () => stream.end('<eof>'));
  });
  // An HTTP/1.1 app that reports what it saw, and echoes WebSocket messages.
  h1Backend = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        method: req.method,
        url: req.url,
        host: req.headers.host,
        proto: req.headers['x-forwarded-proto'],
      }),
    );
  });
  h1Backend.on('upgrade', (req, socket: Socket) => acceptWebSocket(socket, String(req.headers['sec-websocket-key'])));
  const [h2Port, h1Port] = await Promise.all([listening(h2Backend), listening(h1Backend)]);
  const tunnel = gcp.state.addRunService({ name: 'tunnel', http2: true, backendPort: h2Port });
  const echo = gcp.state.addRunService({ name: 'echo', backendPort: h1Port });
  const open = gcp.state.addRunService({ name: 'open', backendPort: h1Port, allowUnauthenticated: true });
  const uri = (s: typeof tunnel): string => gcp.state.runServiceUrls(s)[0] ?? '';
  tunnelUrl = uri(tunnel);
  echoUrl = uri(echo);
  publicUrl = uri(open);
  gcp.state.grant(gcp.state.runServiceName(tunnel), 'roles/run.invoker', RUNNER);
  gcp.state.grant(gcp.state.runServiceName(echo), 'roles/run.invoker', RUNNER);
});

after(async () => {
  await gcp.stop();
  h2Backend.close();
  h1Backend.close();
});

describe('loopback DNS', () => {
  test('resolves Google host names to 127.0.0.1 and leaves other names alone', async () => {
    // When Google names and localhost are resolved in this process
    const names = ['container.googleapis.com', 'x-abc-uc.a.run.app', 'metadata.google.internal', 'localhost'];
    const resolved = await Promise.all(names.map((n) => lookup(n, { family: 4 })));
    // Then the Google names are loopback, and localhost resolved as the system does
    assert.deepEqual(
      resolved.map((r) => r.address),
      ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1'],
    );
    // And a name outside the list is not answered by the hook (the sandbox has no resolver for it)
    await assert.rejects(lookup('no-such-host.invalid'), { code: 'ENOTFOUND' });
  });
});

describe('Cloud Run front end', () => {
  test('streams an HTTP/2 POST both ways to an h2c service, interleaved, for an invoker with an ID token', async () => {
    // Given an ID token for the service URL from the metadata server
    const idToken = await new Compute().fetchIdToken(tunnelUrl);
    // When a client opens a POST stream to its Cloud Run URL (no port: loopback DNS and the front end take it)
    const client = http2Connect(tunnelUrl);
    const stream = client.request({ ':method': 'POST', ':path': '/_hbone/22', authorization: `Bearer ${idToken}` });
    const response = await new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve));
    const read = (): Promise<string> =>
      new Promise((resolve) => stream.once('data', (c: Buffer) => resolve(c.toString())));
    // Then headers arrive before the client has sent a byte, and each chunk comes back before the next is sent
    assert.equal(response[':status'], 200);
    assert.equal(response['x-backend'], 'h2c');
    stream.write('ssh-2.0');
    assert.equal(await read(), 'SSH-2.0');
    stream.write('second');
    assert.equal(await read(), 'SECOND');
    // And the half-close reaches the container, whose end reaches the client
    const rest = read();
    stream.end();
    assert.equal(await rest, '<eof>');
    client.close();
    // And the container saw the Cloud Run host and forwarding headers
    assert.equal(lastH2Headers[':authority'], new URL(tunnelUrl).host);
    assert.equal(lastH2Headers[':path'], '/_hbone/22');
    assert.equal(lastH2Headers['x-forwarded-proto'], 'https');
    assert.match(String(lastH2Headers['x-cloud-trace-context']), /^[0-9a-f]{32}\/\d+;o=1$/);
  });

  test('refuses with Cloud Run pages: 403 without a token, 401 for a bad one, 403 without run.invoker, 404 elsewhere', async () => {
    // Given a valid token from a principal that is not an invoker, and one from an unknown issuer
    const stranger = gcp.state.idToken('stranger@example.com', echoUrl);
    const forged = (await TokenIssuer.create()).idToken({ audience: echoUrl, subject: '1', email: RUNNER });
    const wrongAudience = await new Compute().fetchIdToken('https://elsewhere.example');
    const get = (url: string, token?: string) =>
      fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    // When each asks for the service
    const none = await get(echoUrl);
    const bad = await get(echoUrl, forged);
    const audience = await get(echoUrl, wrongAudience);
    const denied = await get(echoUrl, stranger);
    const unknown = await get(`https://nothing-here-uc.a.run.app/`);
    // Then each gets the refusal Cloud Run gives
    assert.equal(none.status, 403);
    assert.match(await none.text(), /Your client does not have permission to get URL <code>\/<\/code>/);
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
    assert.equal(audience.status, 401);
    assert.equal(denied.status, 403);
    assert.equal(unknown.status, 404);
    assert.match(await unknown.text(), /Error: Page not found/);
  });

  test('lets anyone through to a service where allUsers holds run.invoker', async () => {
    // When an anonymous client calls the public service on its deterministic URL
    const open = gcp.state.runServices.get(`projects/${PROJECT}/locations/us-central1/services/open`);
    const deterministic = open ? (gcp.state.runServiceUrls(open)[1] ?? '') : '';
    const res = await fetch(`${deterministic}/path?q=1`);
    // Then the HTTP/1.1 container answers, seeing the original host
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      method: 'GET',
      url: '/path?q=1',
      host: `open-${NUMBER}.us-central1.run.app`,
      proto: 'https',
    });
    assert.equal(new URL(publicUrl).hostname.endsWith('.a.run.app'), true);
  });

  test('a child process with only the emulator environment reaches an HTTP/1.1 service and its WebSocket', async () => {
    // Given a child Node process whose environment is the emulator's (metadata host, CA, loopback DNS preload)
    const script = `
      const md = 'http://' + process.env.GCE_METADATA_HOST + '/computeMetadata/v1/instance/service-accounts/default/identity?audience=' + encodeURIComponent(process.argv[1]);
      const token = await (await fetch(md, { headers: { 'Metadata-Flavor': 'Google' } })).text();
      const headers = { authorization: 'Bearer ' + token };
      const res = await fetch(process.argv[1] + '/hello', { headers });
      const body = await res.json();
      const ws = new WebSocket(process.argv[1].replace('https:', 'wss:') + '/ws', { headers });
      const echoed = await new Promise((resolve, reject) => {
        ws.onopen = () => ws.send('ping');
        ws.onmessage = (m) => { resolve(m.data); ws.close(); };
        ws.onerror = (e) => reject(new Error('websocket: ' + e.message));
      });
      console.log(JSON.stringify({ status: res.status, body, echoed }));
    `;
    // When it calls the service by its Cloud Run URL
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, echoUrl], {
      env: { ...process.env, ...gcp.env() },
      timeout: 20_000,
    });
    // Then TLS, DNS, IAM and the upgrade all worked
    assert.deepEqual(JSON.parse(stdout), {
      status: 200,
      body: { method: 'GET', url: '/hello', host: new URL(echoUrl).host, proto: 'https' },
      echoed: 'echo:ping',
    });
  });
});
