// The SSH wire encoding (RFC 4251 §5) as far as keys, certificates and signatures need it: a bounds-checked reader
// and a string writer. Malformed input throws WireError; nothing here trusts a length field.

export class WireError extends Error {}

export class WireReader {
  readonly #buf: Buffer;
  #pos = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  get offset(): number {
    return this.#pos;
  }

  get done(): boolean {
    return this.#pos === this.#buf.length;
  }

  #need(n: number): void {
    if (n < 0 || this.#pos + n > this.#buf.length) throw new WireError('truncated SSH data');
  }

  u32(): number {
    this.#need(4);
    const v = this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  u64(): bigint {
    this.#need(8);
    const v = this.#buf.readBigUInt64BE(this.#pos);
    this.#pos += 8;
    return v;
  }

  bytes(): Buffer {
    const n = this.u32();
    this.#need(n);
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  /** A name-list or packed list of strings (certificate principals). */
  strings(): string[] {
    const inner = new WireReader(this.bytes());
    const out: string[] = [];
    while (!inner.done) out.push(inner.text());
    return out;
  }
}

export function wireString(...parts: readonly (Buffer | string)[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p) : p;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    out.push(len, b);
  }
  return Buffer.concat(out);
}
