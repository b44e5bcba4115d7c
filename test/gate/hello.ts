// ClientHellos for the parser's tests: the real ones Node's TLS client sends (captured from a socket), ones built
// field by field, and record fragmentation of either.
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** The first flight of a real TLS client: everything it sent before the (absent) server answered. */
export async function captureClientHello(options: { servername?: string; alpn?: string[] }): Promise<Buffer> {
  const server = createServer();
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        const all = Buffer.concat(chunks);
        // A complete record: enough for Node's single-record ClientHello.
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          resolve(all);
          socket.destroy();
        }
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const client = tlsConnect({
    host: '127.0.0.1',
    port,
    ...(options.servername ? { servername: options.servername } : {}),
    ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
    rejectUnauthorized: false,
  });
  client.on('error', () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);

export interface HelloSpec {
  readonly sni?: string | undefined;
  readonly alpn?: readonly string[];
  /** Extra bytes in a padding extension (21), to grow the hello. */
  readonly padding?: number;
  readonly sessionIdLength?: number;
  /** Leave the extensions block out entirely (TLS 1.0 style). */
  readonly noExtensions?: boolean;
}

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

/** A ClientHello handshake message (type, length, body). */
export function helloMessage(spec: HelloSpec): Buffer {
  const extensions: Buffer[] = [];
  if (spec.sni !== undefined) {
    const name = Buffer.from(spec.sni, 'latin1');
    const entry = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
    extensions.push(extension(0, Buffer.concat([u16(entry.length), entry])));
  }
  if (spec.alpn) {
    const list = Buffer.concat(spec.alpn.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])));
    extensions.push(extension(16, Buffer.concat([u16(list.length), list])));
  }
  if (spec.padding) extensions.push(extension(21, Buffer.alloc(spec.padding)));
  const session = Buffer.alloc(spec.sessionIdLength ?? 32, 7);
  const ext = Buffer.concat(extensions);
  const body = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 1),
    Buffer.from([session.length]),
    session,
    u16(4),
    Buffer.from([0x13, 0x01, 0x13, 0x02]),
    Buffer.from([1, 0]),
    ...(spec.noExtensions ? [] : [u16(ext.length), ext]),
  ]);
  return Buffer.concat([Buffer.from([1]), u24(body.length), body]);
}

/** The handshake bytes as TLS records of at most the given sizes (the last size repeats). */
export function records(handshake: Buffer, sizes: readonly number[] = [16_384]): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = 0; pos < handshake.length; i++) {
    const size = sizes[Math.min(i, sizes.length - 1)] ?? 16_384;
    const part = handshake.subarray(pos, pos + size);
    out.push(Buffer.from([0x16, 3, 1]), u16(part.length), part);
    pos += part.length;
  }
  return Buffer.concat(out);
}

/** The handshake message inside single- or multi-record bytes (for re-fragmenting a captured hello). */
export function handshakeOf(recordBytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let pos = 0; pos + 5 <= recordBytes.length; ) {
    const length = recordBytes.readUInt16BE(pos + 3);
    parts.push(recordBytes.subarray(pos + 5, pos + 5 + length));
    pos += 5 + length;
  }
  return Buffer.concat(parts);
}

/** A deterministic PRNG (mulberry32): the fuzz inputs are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
