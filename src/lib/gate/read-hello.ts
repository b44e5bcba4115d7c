// Reads a connection's ClientHello as it arrives, keeping every byte for the tunnel to replay. Gives up on the first
// byte that can't be TLS, on MAX_BUFFERED_BYTES, on a deadline, and when the peer closes first.
import type { Socket } from 'node:net';
import { type HelloReason, MAX_BUFFERED_BYTES, parseClientHello } from './client-hello.ts';

export type HelloOutcome =
  | { readonly ok: true; readonly serverName: string; readonly alpn: readonly string[]; readonly bytes: Buffer }
  | { readonly ok: false; readonly reason: HelloReason | 'timeout' | 'closed'; readonly detail: string };

export function readClientHello(socket: Socket, timeoutMs: number): Promise<HelloOutcome> {
  return new Promise((resolve) => {
    // Grown by doubling: a ClientHello sent a byte at a time costs O(n log n) copies, not O(n²).
    let buffer = Buffer.allocUnsafe(1024);
    let size = 0;
    const done = (outcome: HelloOutcome) => {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      resolve(outcome);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > buffer.length) {
        const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, size + chunk.length));
        buffer.copy(grown, 0, 0, size);
        buffer = grown;
      }
      chunk.copy(buffer, size);
      size += chunk.length;
      const bytes = buffer.subarray(0, size);
      const result = parseClientHello(bytes);
      if (result.status === 'ok') return done({ ok: true, serverName: result.serverName, alpn: result.alpn, bytes });
      if (result.status === 'rejected') return done({ ok: false, reason: result.reason, detail: result.detail });
      if (size > MAX_BUFFERED_BYTES) {
        done({ ok: false, reason: 'oversized', detail: `no complete ClientHello in ${size} bytes` });
      }
    };
    const onEnd = () => done({ ok: false, reason: 'closed', detail: `the client closed after ${size} bytes` });
    const timer = setTimeout(
      () => done({ ok: false, reason: 'timeout', detail: `no complete ClientHello within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
