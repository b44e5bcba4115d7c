// The gate's HTTP/2 connection pool against krun's real HBONE server over TLS (in this process): the per-connection
// stream cap, reconnecting after the server drops its connections, dropping a connection whose pings go unanswered
// (a proxy in between stops forwarding), and closing idle connections.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type ClientHttp2Stream, createSecureServer } from 'node:http2';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { ConnectionPool, TunnelError } from '../../src/lib/gate/pool.ts';
import { startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { noToken, type TokenSource } from '../../src/lib/hbone/token.ts';
import { silentLogger } from '../../src/lib/log/logger.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { createCertificateAuthority } from '../support/pki.ts';

const ca = await createCertificateAuthority('pool test');
const cert = await ca.issue({ commonName: 'localhost', hosts: ['localhost'], usage: 'server' });
setDefaultCACertificates([...getCACertificates('default'), ca.certPem]);

const echo = createServer((s) => {
  s.on('error', () => {});
  s.pipe(s);
});
echo.listen(0, '127.0.0.1');
await once(echo, 'listening');
const hbone = await startHboneServer({
  listen: { host: '127.0.0.1', port: 0 },
  targets: new TargetTable({ named: { echo: String((echo.address() as AddressInfo).port) } }),
  tls: { key: cert.keyPem, cert: cert.chainPem },
  log: silentLogger,
});

/** A TCP proxy to the HBONE server that can stop forwarding (a link gone silent) or cut every connection. */
async function proxy(): Promise<{ port: number; freeze(): void; cut(): void; accepted: () => number; server: Server }> {
  const pairs: [Socket, Socket][] = [];
  let frozen = false;
  let accepted = 0;
  const server = createServer((client) => {
    accepted += 1;
    const upstream = connect(hbone.address.port, '127.0.0.1');
    for (const s of [client, upstream]) s.on('error', () => {});
    client.on('data', (d) => frozen || upstream.write(d));
    upstream.on('data', (d) => frozen || client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    pairs.push([client, upstream]);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    freeze: () => {
      frozen = true;
    },
    cut: () => {
      for (const [a, b] of pairs.splice(0)) {
        a.destroy();
        b.destroy();
      }
    },
    accepted: () => accepted,
    server,
  };
}

function pool(
  port: number,
  options: { maxStreams?: number; keepAliveMs?: number; idleMs?: number; tokens?: TokenSource } = {},
) {
  const p = new ConnectionPool({
    origin: `https://localhost:${port}`,
    target: 'echo',
    tokens: options.tokens ?? noToken,
    log: silentLogger,
    maxStreams: options.maxStreams ?? 100,
    keepAliveMs: options.keepAliveMs ?? 30_000,
    ...(options.idleMs ? { idleMs: options.idleMs } : {}),
  });
  after(() => p.close());
  return p;
}

async function roundTrip(stream: ClientHttp2Stream, text: string): Promise<string> {
  stream.write(text);
  const [chunk] = (await once(stream, 'data')) as [Buffer];
  return chunk.toString();
}

after(async () => {
  await hbone.close();
  echo.close();
});

describe('gate connection pool', () => {
  test('at most maxStreams tunnels per connection; a closed tunnel frees its slot', async () => {
    const link = await proxy();
    after(() => link.server.close());
    const p = pool(link.port, { maxStreams: 2 });
    const streams = await Promise.all(Array.from({ length: 5 }, () => p.open()));
    assert.equal(p.connections, 3);
    assert.equal(link.accepted(), 3);
    for (const [i, s] of streams.entries()) assert.equal(await roundTrip(s, `t${i}`), `t${i}`);
    const first = streams[0] as ClientHttp2Stream;
    first.end();
    first.resume();
    await once(first, 'close');
    const next = await p.open();
    assert.equal(await roundTrip(next, 'again'), 'again');
    assert.equal(link.accepted(), 3, 'the freed slot was reused');
  });

  test('after the server side drops every connection, the next tunnel reconnects', async () => {
    const link = await proxy();
    after(() => link.server.close());
    const p = pool(link.port);
    const before = await p.open();
    assert.equal(await roundTrip(before, 'one'), 'one');
    link.cut();
    await waitFor('the dropped connection forgotten', async () => (p.connections === 0 ? true : undefined));
    const afterCut = await p.open();
    assert.equal(await roundTrip(afterCut, 'two'), 'two');
    assert.equal(link.accepted(), 2);
  });

  test('a connection whose pings go unanswered is dropped', async () => {
    const link = await proxy();
    after(() => link.server.close());
    const p = pool(link.port, { keepAliveMs: 100 });
    assert.equal(await roundTrip(await p.open(), 'x'), 'x');
    link.freeze();
    await waitFor('the silent connection dropped', async () => (p.connections === 0 ? true : undefined));
  });

  test('an idle connection is closed', async () => {
    const p = pool(hbone.address.port, { keepAliveMs: 50, idleMs: 100 });
    const stream = await p.open();
    stream.end();
    stream.resume();
    await once(stream, 'close');
    assert.equal(p.connections, 1);
    await waitFor('the idle connection closed', async () => (p.connections === 0 ? true : undefined));
  });

  test('failures say why: no token, no connection, a status', async () => {
    const failing: TokenSource = {
      token: async () => {
        throw new Error('no credentials');
      },
    };
    await assert.rejects(pool(hbone.address.port, { tokens: failing }).open(), (err: unknown) => {
      return err instanceof TunnelError && err.reason === 'token' && err.message === 'no credentials';
    });
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await assert.rejects(pool(port).open(), (err: unknown) => err instanceof TunnelError && err.reason === 'connect');
    const unknown = new ConnectionPool({
      origin: `https://localhost:${hbone.address.port}`,
      target: 'nope',
      tokens: noToken,
      log: silentLogger,
      maxStreams: 10,
      keepAliveMs: 30_000,
    });
    after(() => unknown.close());
    await assert.rejects(unknown.open(), (err: unknown) => {
      return (
        err instanceof TunnelError &&
        err.reason === '404' &&
        err.message ===
          `https://localhost:${hbone.address.port}/_hbone/nope has no such tunnel target (HTTP 404): is the service running krun with the mesh port?`
      );
    });
  });

  test('a 401 drops the token and retries once with a fresh one; a second 401 is the error', async () => {
    // A front end that refuses every token, recording what it was sent
    const seen: string[] = [];
    const server = createSecureServer({ key: cert.keyPem, cert: cert.chainPem }, (req, res) => {
      seen.push(String(req.headers.authorization));
      res.writeHead(401).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    after(() => server.close());
    let minted = 0;
    const invalidated: string[] = [];
    const tokens: TokenSource = {
      token: async () => `token-${minted || ++minted}`,
      invalidate: (token) => {
        invalidated.push(token);
        minted += 1;
      },
    };
    const p = pool((server.address() as AddressInfo).port, { tokens });
    await assert.rejects(p.open(), (err: unknown) => err instanceof TunnelError && err.reason === '401');
    assert.deepEqual(seen, ['Bearer token-1', 'Bearer token-2']);
    assert.deepEqual(invalidated, ['token-1']);
  });
});
