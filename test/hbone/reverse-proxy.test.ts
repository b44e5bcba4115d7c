// Requests that are not tunnels reach the application: streamed both ways, trailers both ways, this hop recorded in
// Forwarded/X-Forwarded-*, and x-forwarded-client-cert never passed on.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type HboneServer, startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { silentLogger } from '../../src/lib/log/logger.ts';
import { collect } from './support.ts';

describe('reverse proxy to the app', () => {
  let app: Server;
  let server: HboneServer;
  const seen: { headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders; url: string }[] = [];

  before(async () => {
    // The app: /echo streams each request chunk straight back, prefixed, then sends a trailer; /headers reports.
    app = createServer((req: IncomingMessage, res) => {
      if (req.url?.startsWith('/echo')) {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-app-checksum' });
        res.flushHeaders();
        req.on('data', (chunk: Buffer) => res.write(`echo:${chunk.toString()};`));
        req.on('end', () => {
          seen.push({ headers: req.headers, trailers: req.trailers, url: req.url ?? '' });
          res.addTrailers({ 'x-app-checksum': 'abc123' });
          res.end();
        });
        return;
      }
      seen.push({ headers: req.headers, trailers: {}, url: req.url ?? '' });
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5' });
      res.end(JSON.stringify(req.headers));
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    server = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({ sshPort: null }),
      appPort: (app.address() as AddressInfo).port,
      log: silentLogger,
    });
  });
  after(async () => {
    await server.close();
    app.closeAllConnections();
    app.close();
  });

  test('HTTP/2: bodies stream both ways and trailers pass in both directions', async () => {
    // Given an HTTP/2 request to the app with a body sent in two parts and a trailer
    const session = http2Connect(server.url);
    const stream = session.request(
      { ':method': 'POST', ':path': '/echo?q=1', te: 'trailers' },
      { waitForTrailers: true },
    );
    stream.once('wantTrailers', () => stream.sendTrailers({ 'x-client-sum': '42' }));
    const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
    assert.equal(headers[':status'], 200);
    // When the first part is sent, its echo arrives before the request ends (streaming, not buffering)
    stream.write('one');
    const [firstEcho] = (await once(stream, 'data')) as [Buffer];
    assert.equal(firstEcho.toString(), 'echo:one;');
    const trailers = once(stream, 'trailers');
    stream.end('two');
    const rest = await collect(stream);
    // Then the rest follows, and the app's trailer arrives as an HTTP/2 trailer
    assert.equal(rest.toString(), 'echo:two;');
    const [appTrailers] = (await trailers) as [IncomingHttpHeaders];
    assert.equal(appTrailers['x-app-checksum'], 'abc123');
    // And the app saw the client's trailer and the original path with its query
    const last = seen.at(-1);
    assert.equal(last?.url, '/echo?q=1');
    assert.equal(last?.trailers['x-client-sum'], '42');
    session.close();
  });

  test('Forwarded/X-Forwarded-* describe the hop, earlier hops are kept, x-forwarded-client-cert is stripped', async () => {
    // Given a request that already went through a front end and carries a forged client certificate header
    const session = http2Connect(server.url);
    const stream = session.request({
      ':path': '/headers',
      ':authority': 'svc.example.com',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'https',
      forwarded: 'for=203.0.113.7;proto=https',
      'x-forwarded-client-cert': 'By=spiffe://evil;URI=spiffe://cluster.local/ns/admin/sa/root',
    });
    const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
    const got = JSON.parse((await collect(stream)).toString()) as IncomingHttpHeaders;
    // Then the app sees this hop appended and the original scheme and host preserved
    assert.equal(got['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(got['x-forwarded-proto'], 'https');
    assert.equal(got['x-forwarded-host'], 'svc.example.com');
    assert.equal(got.forwarded, 'for=203.0.113.7;proto=https, for=127.0.0.1;host=svc.example.com;proto=http');
    assert.equal(got.host, 'svc.example.com');
    assert.equal(got['x-forwarded-client-cert'], undefined);
    // And the app's connection-specific response headers did not reach the HTTP/2 client
    assert.equal(headers[':status'], 200);
    assert.equal(headers['keep-alive'], undefined);
    session.close();
  });

  test('HTTP/1.1: the same proxy, with this hop added to a fresh chain', async () => {
    // Given a plain HTTP/1.1 request
    const url = new URL('/headers', server.url);
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request(url, { headers: { 'x-forwarded-client-cert': 'forged' } }, resolve)
        .on('error', reject)
        .end(),
    );
    const got = JSON.parse((await collect(res)).toString()) as IncomingHttpHeaders;
    // Then the app sees one hop, no forged certificate header
    assert.equal(res.statusCode, 200);
    assert.equal(got['x-forwarded-for'], '127.0.0.1');
    assert.equal(got['x-forwarded-proto'], 'http');
    assert.equal(got.forwarded, `for=127.0.0.1;host="${url.host}";proto=http`);
    assert.equal(got['x-forwarded-client-cert'], undefined);
  });

  test('an /_hbone/ path is never proxied, even when the target is unknown', async () => {
    // Given the app would answer anything
    const before = seen.length;
    const session = http2Connect(server.url);
    const stream = session.request({ ':method': 'POST', ':path': '/_hbone/unknown' });
    const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
    // Then the server answers 404 itself
    assert.equal(headers[':status'], 404);
    assert.equal(seen.length, before);
    session.close();
  });
});
