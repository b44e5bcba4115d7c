// Reads the server name (SNI) and ALPN protocols of a TLS ClientHello without terminating TLS. A pure function of the
// bytes received so far, called again as more arrive: it says "need more", the names, or why the bytes can never be
// a usable ClientHello. The ClientHello may be fragmented over several TLS records (the original read only the first
// record) and over any number of TCP segments. Work and memory are bounded: at most MAX_HELLO_BYTES of handshake in
// at most MAX_RECORDS records, so no input makes the gate buffer more than MAX_BUFFERED_BYTES.

/** The largest ClientHello accepted (handshake header included): TLS's plaintext record limit. */
export const MAX_HELLO_BYTES = 16_384;
/** Records the ClientHello may be fragmented into. */
export const MAX_RECORDS = 256;
const RECORD_HEADER = 5;
/** The most bytes a connection can send before the parser decides. */
export const MAX_BUFFERED_BYTES = MAX_HELLO_BYTES + MAX_RECORDS * RECORD_HEADER;

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;

export type HelloReason = 'not-tls' | 'malformed' | 'oversized' | 'no-sni';

export type HelloResult =
  | { readonly status: 'need-more' }
  | { readonly status: 'ok'; readonly serverName: string; readonly alpn: readonly string[] }
  | { readonly status: 'rejected'; readonly reason: HelloReason; readonly detail: string };

const NEED_MORE: HelloResult = { status: 'need-more' };

function reject(reason: HelloReason, detail: string): HelloResult {
  return { status: 'rejected', reason, detail };
}

/** A ClientHello body field was out of bounds. */
class Malformed extends Error {}

/** Bounds-checked big-endian reads over one buffer. */
class Reader {
  readonly #buf: Buffer;
  #pos: number;
  readonly #end: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(n: number, what: string): void {
    if (n > this.remaining) throw new Malformed(`${what} runs past the end`);
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#buf[this.#pos++] as number;
  }

  u16(what: string): number {
    this.#need(2, what);
    const v = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }

  skip(n: number, what: string): void {
    this.#need(n, what);
    this.#pos += n;
  }

  /** A sub-reader over the next `n` bytes, which this reader skips. */
  sub(n: number, what: string): Reader {
    this.#need(n, what);
    const r = new Reader(this.#buf, this.#pos, this.#pos + n);
    this.#pos += n;
    return r;
  }

  bytes(n: number, what: string): Buffer {
    this.#need(n, what);
    const b = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }
}

/** A DNS host name as SNI carries it: LDH labels, no trailing dot, no IP literal (RFC 6066 §3). */
const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * Where the bytes received so far stand. `data` is everything the connection sent, from its first byte; bytes after
 * the ClientHello (a ChangeCipherSpec, early data) are ignored.
 */
export function parseClientHello(data: Buffer): HelloResult {
  if (data.length === 0) return NEED_MORE;
  const first = data[0] as number;
  if (first !== HANDSHAKE) {
    if (first & 0x80 && data.length >= 3 && data[2] === CLIENT_HELLO) {
      return reject('not-tls', 'an SSLv2-format ClientHello (no SNI possible)');
    }
    if (first >= 0x20 && first < 0x7f) return reject('not-tls', `plain text (starts with "${printable(data)}")`);
    return reject('not-tls', `first byte 0x${first.toString(16).padStart(2, '0')} is not a TLS handshake record`);
  }
  // Reassemble the handshake stream from the records present, checking each header as it arrives.
  const fragments: Buffer[] = [];
  let handshakeBytes = 0;
  let pos = 0;
  let records = 0;
  let helloLength: number | undefined;
  while (pos < data.length) {
    if (data.length - pos < RECORD_HEADER) {
      const check = recordHeaderCheck(data, pos, data.length - pos);
      return check ?? NEED_MORE;
    }
    const check = recordHeaderCheck(data, pos, RECORD_HEADER);
    if (check) return check;
    const length = data.readUInt16BE(pos + 3);
    if (length === 0) return reject('malformed', 'an empty handshake record');
    if (length > MAX_HELLO_BYTES) return reject('oversized', `a record of ${length} bytes (limit ${MAX_HELLO_BYTES})`);
    records += 1;
    if (records > MAX_RECORDS) return reject('oversized', `the ClientHello spans more than ${MAX_RECORDS} records`);
    const body = data.subarray(pos + RECORD_HEADER, Math.min(data.length, pos + RECORD_HEADER + length));
    fragments.push(body);
    handshakeBytes += body.length;
    pos += RECORD_HEADER + length;
    if (helloLength === undefined && handshakeBytes >= 4) {
      const header = Buffer.concat(fragments).subarray(0, 4);
      if (header[0] !== CLIENT_HELLO) {
        return reject('malformed', `handshake message type ${header[0]} where a ClientHello (1) must come first`);
      }
      helloLength = header.readUIntBE(1, 3) + 4;
      if (helloLength > MAX_HELLO_BYTES) {
        return reject('oversized', `a ClientHello of ${helloLength} bytes (limit ${MAX_HELLO_BYTES})`);
      }
    }
    if (helloLength !== undefined && handshakeBytes >= helloLength) {
      return parseHello(Buffer.concat(fragments).subarray(4, helloLength));
    }
    if (body.length < length) return NEED_MORE;
  }
  return NEED_MORE;
}

/** Checks the `available` bytes of a record header at `pos`: a handshake record of TLS 1.x (major version 3). */
function recordHeaderCheck(data: Buffer, pos: number, available: number): HelloResult | undefined {
  if (data[pos] !== HANDSHAKE) {
    return reject('malformed', `record type ${data[pos]} before the ClientHello ended`);
  }
  if (available >= 2 && data[pos + 1] !== 3) {
    return reject('not-tls', `record version major ${data[pos + 1]} (TLS uses 3)`);
  }
  return undefined;
}

function printable(data: Buffer): string {
  return data
    .subarray(0, 16)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.');
}

function parseHello(body: Buffer): HelloResult {
  try {
    const r = new Reader(body);
    r.skip(2, 'client version');
    r.skip(32, 'random');
    const sessionId = r.u8('session id length');
    if (sessionId > 32) throw new Malformed(`a session id of ${sessionId} bytes (at most 32)`);
    r.skip(sessionId, 'session id');
    const suites = r.u16('cipher suites length');
    if (suites < 2 || suites % 2 !== 0) throw new Malformed(`a cipher suites length of ${suites}`);
    r.skip(suites, 'cipher suites');
    const compression = r.u8('compression methods length');
    if (compression < 1) throw new Malformed('no compression methods');
    r.skip(compression, 'compression methods');
    if (r.remaining === 0) return reject('no-sni', 'the ClientHello has no extensions');
    const extensions = r.sub(r.u16('extensions length'), 'extensions');
    if (r.remaining !== 0) throw new Malformed(`${r.remaining} bytes after the extensions`);
    let serverName: string | undefined;
    let alpn: string[] = [];
    const seen = new Set<number>();
    while (extensions.remaining > 0) {
      const type = extensions.u16('extension type');
      const ext = extensions.sub(extensions.u16('extension length'), `extension ${type}`);
      if (seen.has(type)) throw new Malformed(`extension ${type} appears twice`);
      seen.add(type);
      if (type === EXT_SERVER_NAME) serverName = readServerName(ext);
      else if (type === EXT_ALPN) alpn = readAlpn(ext);
    }
    if (serverName === undefined) return reject('no-sni', 'the ClientHello names no server (no SNI extension)');
    return { status: 'ok', serverName, alpn };
  } catch (err) {
    if (err instanceof Malformed) return reject('malformed', err.message);
    throw err;
  }
}

function readServerName(ext: Reader): string {
  const list = ext.sub(ext.u16('server name list length'), 'server name list');
  if (ext.remaining !== 0) throw new Malformed('bytes after the server name list');
  let name: string | undefined;
  while (list.remaining > 0) {
    const type = list.u8('server name type');
    const value = list.bytes(list.u16('server name length'), 'server name');
    if (type !== 0 || name !== undefined) continue;
    const text = value.toString('latin1').toLowerCase();
    if (!HOST_NAME.test(text)) throw new Malformed(`server name "${printable(value)}" is not a DNS host name`);
    name = text;
  }
  if (name === undefined) throw new Malformed('the server name extension has no host name');
  return name;
}

function readAlpn(ext: Reader): string[] {
  const list = ext.sub(ext.u16('ALPN list length'), 'ALPN list');
  if (ext.remaining !== 0) throw new Malformed('bytes after the ALPN list');
  const protocols: string[] = [];
  while (list.remaining > 0) {
    const length = list.u8('ALPN protocol length');
    if (length === 0) throw new Malformed('an empty ALPN protocol name');
    protocols.push(list.bytes(length, 'ALPN protocol').toString('latin1'));
  }
  return protocols;
}
