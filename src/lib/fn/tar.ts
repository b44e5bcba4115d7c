// A streaming ustar writer: the files of a bind mount, sent over the attach stream to `tar -x` in the Pod's init
// container. Regular files and directories only; names longer than ustar's 100 + 155 bytes are refused.
import { createReadStream } from 'node:fs';
import { FnRuntimeError } from './errors.ts';

export interface TarEntry {
  /** Relative path in the archive; directories end without a slash. */
  readonly name: string;
  readonly type: 'file' | 'directory';
  /** Absolute path of a file's content on this machine. */
  readonly source?: string;
  readonly size: number;
  readonly mode: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** ustar keeps a path in `name` (100 bytes) or splits it at a slash into `prefix` (155) and `name`. */
function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name) return { name, prefix };
  }
  throw new FnRuntimeError(`--mount: the path ${path} is too long to copy into the Pod (ustar limit)`);
}

export function header(entry: TarEntry, mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const path = entry.type === 'directory' ? `${entry.name}/` : entry.name;
  const { name, prefix } = splitName(path);
  block.write(name, 0, 100);
  block.write(octal(entry.mode & 0o7777, 8), 100);
  block.write(octal(0, 8), 108); // uid
  block.write(octal(0, 8), 116); // gid
  block.write(octal(entry.type === 'file' ? entry.size : 0, 12), 124);
  block.write(octal(mtime, 12), 136);
  block.write('        ', 148); // checksum placeholder: eight spaces
  block.write(entry.type === 'file' ? '0' : '5', 156);
  block.write('ustar\x0000', 257);
  block.write(prefix, 345, 155);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

/** The archive, block by block, reading each file as it goes; a file that changes size meanwhile is an error. */
export async function* tarStream(entries: readonly TarEntry[], mtime = Math.floor(Date.now() / 1000)) {
  for (const entry of entries) {
    yield header(entry, mtime);
    if (entry.type !== 'file' || !entry.source) continue;
    let written = 0;
    for await (const chunk of createReadStream(entry.source)) {
      written += (chunk as Buffer).length;
      if (written > entry.size) break;
      yield chunk as Buffer;
    }
    if (written !== entry.size) {
      throw new FnRuntimeError(`--mount: ${entry.source} changed while it was copied into the Pod`);
    }
    const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * BLOCK);
}
