// The tunnel server and the library client on loopback: exact bytes both ways, half-close in either order, many
// tunnels on one connection, resets, 404 for targets outside the allow-list, and the WebSocket transport.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as http2Connect } from 'node:http2';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { TransportError } from '../../src/lib/errors.ts';
import { HboneClient, type TransportMode } from '../../src/lib/hbone/client.ts';
import { type HboneServer, startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { noToken } from '../../src/lib/hbone/token.ts';
import { silentLogger } from '../../src/lib/log/logger.ts';
import { collect, echo, memoryLogger, random, startTarget, type Target, writeAll } from './support.ts';

/** Collects the client's bytes until it half-closes, then answers with `reply` and ends. */
function replyAfterEof(reply: Buffer, received: Promise<Buffer>[]) {
  return (socket: Socket) => {
    const data = collect(socket);
    received.push(data);
    void data.then(() => socket.end(reply));
  };
}

/** Sends `first` and half-closes at once, then keeps reading the client's bytes until it ends too. */
function speakFirstThenListen(first: Buffer, received: Promise<Buffer>[]) {
  return (socket: Socket) => {
    socket.end(first);
    received.push(collect(socket));
  };
}

describe('HBONE tunnels', () => {
  const serverLog = memoryLogger();
  const lateReceived: Promise<Buffer>[] = [];
  const earlyReceived: Promise<Buffer>[] = [];
  const reply = random(1024 * 1024 + 17);
  const first = random(700 * 1024 + 3);
  let echoTarget: Target;
  let afterEof: Target;
  let speaksFirst: Target;
  let server: HboneServer;

  before(async () => {
    [echoTarget, afterEof, speaksFirst] = await Promise.all([
      startTarget(echo),
      startTarget(replyAfterEof(reply, lateReceived)),
      startTarget(speakFirstThenListen(first, earlyReceived)),
    ]);
    server = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({
        sshPort: null,
        named: { echo: String(echoTarget.port), late: afterEof.address, early: speaksFirst.address },
      }),
      log: serverLog.log,
    });
  });
  after(async () => {
    await server.close();
    await Promise.all([echoTarget.close(), afterEof.close(), speaksFirst.close()]);
  });

  const client = (transport: TransportMode = 'h2') =>
    new HboneClient({ origin: new URL(server.url), tokens: noToken, log: silentLogger, transport });

  for (const transport of ['h2', 'websocket'] as const) {
    describe(`over ${transport === 'h2' ? 'HTTP/2' : 'WebSocket'}`, () => {
      test('the client half-closes first: the target gets every byte, and its reply still comes back', async () => {
        // Given a target that answers only after the client's end of stream
        const c = client(transport);
        const tunnel = await c.open('late');
        const sent = random(3 * 1024 * 1024 + 5);
        // When the client sends random bytes and half-closes
        const [, back] = await Promise.all([writeAll(tunnel.stream, sent), collect(tunnel.stream)]);
        // Then the target saw exactly those bytes and the end, and the client got the full reply afterwards
        assert.equal(Buffer.compare(await (lateReceived.at(-1) ?? Buffer.alloc(0)), sent), 0);
        assert.equal(Buffer.compare(back, reply), 0);
        c.close();
      });

      test('the target half-closes first: the client can keep sending afterwards', async () => {
        // Given a target that sends its bytes and its end of stream at once
        const c = client(transport);
        const tunnel = await c.open('early');
        // When the client reads to the end and only then sends its own bytes
        const back = await collect(tunnel.stream);
        const sent = random(2 * 1024 * 1024 + 1);
        await writeAll(tunnel.stream, sent);
        // Then both directions arrived complete
        assert.equal(Buffer.compare(back, first), 0);
        assert.equal(Buffer.compare(await (earlyReceived.at(-1) ?? Buffer.alloc(0)), sent), 0);
        c.close();
      });
    });
  }

  test('100 concurrent tunnels share one HTTP/2 connection and each keeps its own bytes', async () => {
    // Given one client
    const c = client();
    const before = server.acceptedConnections;
    // When 100 tunnels to the echo target are open at the same time, each sending different bytes
    const tunnels = await Promise.all(Array.from({ length: 100 }, () => c.open('echo')));
    assert.equal(server.openTunnels, 100);
    const results = await Promise.all(
      tunnels.map(async (t, i) => {
        const data = random(16 * 1024 + i);
        const [, back] = await Promise.all([writeAll(t.stream, data), collect(t.stream)]);
        return Buffer.compare(back, data);
      }),
    );
    // Then every tunnel echoed exactly its own bytes, over a single TCP connection
    assert.deepEqual(results, Array(100).fill(0));
    assert.equal(server.acceptedConnections - before, 1);
    c.close();
  });

  test('a query string does not change the route', async () => {
    // Given a raw HTTP/2 request to /_hbone/echo?trace=1
    const session = http2Connect(server.url);
    const stream = session.request({ ':method': 'POST', ':path': '/_hbone/echo?trace=1' });
    const [headers] = (await once(stream, 'response')) as [Record<string, unknown>];
    // Then the tunnel opens and echoes
    assert.equal(headers[':status'], 200);
    stream.end('ping');
    assert.equal((await collect(stream)).toString(), 'ping');
    session.close();
  });

  test('an unknown target gets 404 and is logged; nothing is dialled', async () => {
    // Given a client
    const c = client();
    // When it asks for a target outside the allow-list
    const err = await c.open('nope').then(
      () => assert.fail('the tunnel opened'),
      (e: unknown) => e,
    );
    // Then it fails as a transport error naming the 404
    assert.ok(err instanceof TransportError);
    assert.match(err.message, /no tunnel target "nope" .*HTTP 404/);
    assert.ok(serverLog.lines().some((l) => l.message === 'tunnel target not allowed' && l.target === 'nope'));
    c.close();
  });

  test('CONNECT reaches an allow-listed host:port and nothing else', async () => {
    // Given a raw HTTP/2 session, as Istio's peers open it
    const session = http2Connect(server.url);
    // When it CONNECTs to the echo target's address
    const ok = session.request({ ':method': 'CONNECT', ':authority': echoTarget.address });
    const [okHeaders] = (await once(ok, 'response')) as [Record<string, unknown>];
    ok.end('hello');
    // Then the tunnel works
    assert.equal(okHeaders[':status'], 200);
    assert.equal((await collect(ok)).toString(), 'hello');
    // And a CONNECT to a port that is not allow-listed gets 404
    const denied = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:1' });
    const [deniedHeaders] = (await once(denied, 'response')) as [Record<string, unknown>];
    assert.equal(deniedHeaders[':status'], 404);
    session.close();
  });

  test('a target that refuses the connection gives 502, reported as a transport error', async () => {
    // Given a target whose listener is gone
    const gone = await startTarget(echo);
    await gone.close();
    const s = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({ named: { gone: String(gone.port) } }),
      log: silentLogger,
    });
    const c = new HboneClient({ origin: new URL(s.url), tokens: noToken, log: silentLogger });
    // When a tunnel to it is opened
    const err = await c.open('gone').then(
      () => assert.fail('the tunnel opened'),
      (e: unknown) => e,
    );
    // Then the client reports the 502
    assert.ok(err instanceof TransportError);
    assert.match(err.message, /can't reach tunnel target "gone" \(HTTP 502\)/);
    c.close();
    await s.close();
  });

  test('a reset from the target resets the tunnel', async () => {
    // Given a target that resets every connection after the first bytes
    const resetting = await startTarget((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const s = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({ named: { rst: resetting.address } }),
      log: silentLogger,
    });
    const c = new HboneClient({ origin: new URL(s.url), tokens: noToken, log: silentLogger });
    const tunnel = await c.open('rst');
    // When the client sends
    tunnel.stream.write('x');
    // Then the tunnel fails rather than ending cleanly
    await assert.rejects(collect(tunnel.stream));
    await s.whenIdle();
    c.close();
    await s.close();
    await resetting.close();
  });
});
