// Loopback peers for the HBONE tests: TCP targets with scripted behaviour, a collector for byte streams, and a
// silent logger that keeps what it was told.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/lib/log/logger.ts';

export interface Target {
  readonly port: number;
  readonly address: string;
  /** Connections accepted so far. */
  readonly accepted: Socket[];
  /** Resolves once every accepted connection has closed. */
  allClosed(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 whose connections allow half-close, running `onConnection` for each. */
export async function startTarget(onConnection: (socket: Socket) => void): Promise<Target> {
  const accepted: Socket[] = [];
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    address: `127.0.0.1:${port}`,
    accepted,
    allClosed: async () => {
      await Promise.all(accepted.map((s) => (s.closed ? undefined : once(s, 'close'))));
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of accepted) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Echoes every byte, and ends its side once the peer has ended. */
export function echo(socket: Socket): void {
  socket.pipe(socket);
}

/** Everything a stream yields until it ends. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes `data` in pieces of varied size, honouring back-pressure, then ends the stream. */
export async function writeAll(stream: Writable, data: Buffer, end = true): Promise<void> {
  let offset = 0;
  let piece = 1;
  while (offset < data.length) {
    const size = Math.min(data.length - offset, piece);
    piece = piece >= 256 * 1024 ? 1 : piece * 7;
    if (!stream.write(data.subarray(offset, offset + size))) await once(stream, 'drain');
    offset += size;
  }
  if (end) stream.end();
}

export function random(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** A debug-level JSON logger into memory: tests assert what the server said. */
export function memoryLogger(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const log = createLogger({
    stream: {
      write: (chunk: string) => {
        out.push(chunk);
        return true;
      },
    } as unknown as Writable,
    format: 'json',
    level: 'debug',
  });
  return {
    log,
    lines: () =>
      out
        .join('')
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
