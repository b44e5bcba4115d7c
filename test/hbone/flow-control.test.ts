// Large transfers through a tunnel whose far end stops reading: HTTP/2 flow control and the tunnel's back-pressure
// (write coalescing included) stall the sender instead of buffering, the tunnel's own buffers stay small, and once
// the reader reads again, slowly, every byte arrives in order. The kernel's loopback buffers (tens of MiB with
// autotuning) absorb part of the stream before the stall; the transfer is sized well beyond them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { HboneClient } from '../../src/lib/hbone/client.ts';
import { dialTcp } from '../../src/lib/hbone/dial.ts';
import { type HboneServer, startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { noToken } from '../../src/lib/hbone/token.ts';
import { silentLogger } from '../../src/lib/log/logger.ts';
import { startTarget, type Target } from './support.ts';

const TOTAL = 192 * 1024 * 1024;
const CHUNK = 64 * 1024;
/**
 * What the tunnel may hold in Node's buffers on either leg: a highWaterMark (64 KiB) plus the burst of HTTP/2 frames
 * one socket read delivers before the pause takes effect, with slack. Without back-pressure this grows to many MiB.
 */
const BUFFER_BOUND = 512 * 1024;

/** The i-th chunk of the transfer: a random block stamped with its index, so reordering or loss changes the hash. */
function chunkOf(base: Buffer, i: number): Buffer {
  const chunk = Buffer.from(base);
  chunk.writeUInt32BE(i, 0);
  return chunk;
}

/** Sends TOTAL bytes honouring back-pressure; `accepted` counts what the stream took, `blocked` says it waits. */
function sender(stream: Writable, base: Buffer) {
  const state = { accepted: 0, blocked: false, hash: createHash('sha256'), done: Promise.resolve() };
  state.done = (async () => {
    for (let i = 0; state.accepted < TOTAL; i++) {
      const chunk = chunkOf(base, i);
      state.hash.update(chunk);
      state.accepted += chunk.length;
      if (!stream.write(chunk)) {
        state.blocked = true;
        await once(stream, 'drain');
        state.blocked = false;
      }
    }
    stream.end();
  })();
  return state;
}

/** Resolves once `progress()` has not moved for a while and `blocked()` holds (stalled), or it reached TOTAL. */
async function stall(progress: () => number, blocked: () => boolean): Promise<number> {
  let last = -1;
  let still = 0;
  while (still < 10 && last < TOTAL) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = progress();
    still = now === last && blocked() ? still + 1 : 0;
    last = now;
  }
  return last;
}

/** A slow consumer: hashes what it gets, yielding to the event loop after every chunk. */
function slowHasher(): { sink: Writable; bytes: () => number; digest: () => string } {
  const hash = createHash('sha256');
  let bytes = 0;
  const sink = new Writable({
    highWaterMark: CHUNK,
    write(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      setImmediate(callback);
    },
  });
  return { sink, bytes: () => bytes, digest: () => hash.digest('hex') };
}

/** Samples `measure` until stopped; the largest value seen. */
function peak(measure: () => number): { stop: () => number } {
  let max = 0;
  const timer = setInterval(() => {
    max = Math.max(max, measure());
  }, 2);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(max, measure());
    },
  };
}

describe('HBONE flow control', () => {
  const base = randomBytes(CHUNK);
  let uploadTarget: Target;
  let downloadTarget: Target;
  let server: HboneServer;
  const upstreams: Socket[] = [];
  const targetSockets: Socket[] = [];

  before(async () => {
    // Targets that accept and do nothing until the test says: they neither read nor write on their own.
    [uploadTarget, downloadTarget] = await Promise.all([
      startTarget((socket) => {
        socket.pause();
        targetSockets.push(socket);
      }),
      startTarget((socket) => targetSockets.push(socket)),
    ]);
    server = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({
        sshPort: null,
        named: { up: uploadTarget.address, down: downloadTarget.address },
      }),
      log: silentLogger,
      dial: async (target, signal) => {
        const socket = await dialTcp(target, signal);
        upstreams.push(socket);
        return socket;
      },
    });
  });
  after(async () => {
    await server.close();
    await Promise.all([uploadTarget.close(), downloadTarget.close()]);
  });

  /** A tunnel to `name`, with the server's socket to the target and the target's own socket. */
  const open = async (name: string) => {
    const client = new HboneClient({
      origin: new URL(server.url),
      tokens: noToken,
      log: silentLogger,
      transport: 'h2',
    });
    const tunnel = await client.open(name);
    await new Promise((resolve) => setImmediate(resolve));
    return { client, tunnel, upstream: upstreams.at(-1) as Socket, target: targetSockets.at(-1) as Socket };
  };

  test('a target that stops reading stalls the client within bounded buffers; a slow reader then gets every byte', async () => {
    // Given a tunnel to a target that does not read
    const { client, tunnel, upstream, target } = await open('up');
    const tunnelBuffer = peak(() => upstream.writableLength);
    const clientBuffer = peak(() => tunnel.stream.writableLength);
    // When the client sends far more than any window or socket buffer holds
    const send = sender(tunnel.stream, base);
    const stalledAt = await stall(
      () => send.accepted,
      () => send.blocked,
    );
    // Then the sender stalls before the end, with the tunnel's own buffers bounded
    assert.ok(stalledAt < TOTAL, `the sender stalled at ${stalledAt} of ${TOTAL} bytes`);
    assert.ok(upstream.writableLength <= BUFFER_BOUND, `server → target buffer ${upstream.writableLength}`);
    // When the target reads again, slowly, and answers with its digest at the end
    const reader = slowHasher();
    target.pipe(reader.sink);
    target.resume();
    reader.sink.on('finish', () => target.end(reader.digest()));
    const reply: Buffer[] = [];
    tunnel.stream.on('data', (c: Buffer) => reply.push(c));
    await send.done;
    await once(tunnel.stream, 'end');
    // Then every byte arrived, in order, and the buffers stayed bounded throughout
    assert.equal(reader.bytes(), send.accepted);
    assert.equal(Buffer.concat(reply).toString(), send.hash.digest('hex'));
    const maxTunnel = tunnelBuffer.stop();
    const maxClient = clientBuffer.stop();
    assert.ok(maxTunnel <= BUFFER_BOUND, `server → target buffer peaked at ${maxTunnel}`);
    assert.ok(maxClient <= BUFFER_BOUND, `client buffer peaked at ${maxClient}`);
    client.close();
  });

  test('a client that stops reading stalls the target within bounded buffers; then gets every byte', async () => {
    // Given a tunnel whose client does not read
    const { client, tunnel, upstream, target } = await open('down');
    tunnel.stream.pause();
    tunnel.stream.end();
    const tunnelBuffer = peak(() => upstream.readableLength);
    // When the target sends far more than any window or socket buffer holds
    const send = sender(target, base);
    const stalledAt = await stall(
      () => send.accepted,
      () => send.blocked,
    );
    // Then the target stalls before the end, and the server holds little of what it read
    assert.ok(stalledAt < TOTAL, `the target stalled at ${stalledAt} of ${TOTAL} bytes`);
    // When the client reads again, slowly
    const reader = slowHasher();
    tunnel.stream.pipe(reader.sink);
    await Promise.all([send.done, once(reader.sink, 'finish')]);
    // Then every byte arrived in order, and the server's buffer from the target stayed bounded
    assert.equal(reader.bytes(), send.accepted);
    assert.equal(reader.digest(), send.hash.digest('hex'));
    const maxTunnel = tunnelBuffer.stop();
    assert.ok(maxTunnel <= BUFFER_BOUND, `target → server buffer peaked at ${maxTunnel}`);
    client.close();
  });
});
