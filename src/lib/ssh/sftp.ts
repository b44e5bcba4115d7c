// The sftp subsystem in-process, on ssh2's server side of the protocol: images need no sftp-server binary, tar or
// shell for `scp` (SFTP-based since OpenSSH 9) and `sftp` to work. Paths are the container's own (krun runs as
// the Pod's user); relative paths start at the working directory. Open handles per session are capped. Every
// operation that reads or changes a file is an audit event (opens with their flags, per-handle byte totals at
// close, removals, renames, new directories, attribute changes); listings and stats are not.
import { constants, type Stats } from 'node:fs';
import {
  chmod,
  chown,
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  realpath,
  rename,
  rmdir,
  stat,
  symlink,
  truncate,
  unlink,
  utimes,
} from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Attributes, InputAttributes, SFTPWrapper } from 'ssh2';
import type { AuditEvent, AuditScope } from '../audit/audit.ts';
import type { Fields } from '../log/logger.ts';
import { type QueueCredit, type QueueLimit, queueCredit } from './sftp-credit.ts';

export interface SftpOptions {
  readonly cwd: string;
  readonly audit: AuditScope;
  readonly maxHandles?: number;
  /** Queued requests past which the client must wait (sftp-credit.ts); QUEUE_LIMIT unless set. */
  readonly queueLimit?: QueueLimit;
  /** Sees the queue's counters after every request queued (tests). */
  readonly onQueued?: (credit: QueueCredit) => void;
}

const STATUS = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 } as const;
const OPEN = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 16, EXCL: 32 } as const;
/** OpenSSH's sftp-server's limit: the answer must fit its clients' 256 KiB packets. */
const MAX_READ = 256 * 1024 - 1024;
/** Queued reads or writes served together: bytes (a read batch's buffer is reused) and requests. */
const BATCH_BYTES = 1024 * 1024;
const BATCH_REQUESTS = 128;
const DIR_CHUNK = 100;

interface OpenFile {
  readonly kind: 'file';
  readonly file: FileHandle;
  readonly path: string;
  bytesRead: number;
  bytesWritten: number;
}

type Handle = OpenFile | { readonly kind: 'dir'; readonly path: string; entries?: DirEntry[] };

interface DirEntry {
  readonly filename: string;
  readonly longname: string;
  readonly attrs: Attributes;
}

export function openFlags(pflags: number): number {
  const rw =
    pflags & OPEN.READ && pflags & OPEN.WRITE
      ? constants.O_RDWR
      : pflags & OPEN.WRITE
        ? constants.O_WRONLY
        : constants.O_RDONLY;
  return (
    rw |
    (pflags & OPEN.APPEND ? constants.O_APPEND : 0) |
    (pflags & OPEN.CREAT ? constants.O_CREAT : 0) |
    (pflags & OPEN.TRUNC ? constants.O_TRUNC : 0) |
    (pflags & OPEN.EXCL ? constants.O_EXCL : 0)
  );
}

/** The SFTP open flags by name, for the audit trail. */
function flagNames(pflags: number): string {
  return Object.entries(OPEN)
    .filter(([, bit]) => pflags & bit)
    .map(([name]) => name.toLowerCase())
    .join(',');
}

/** The attributes a SETSTAT sets, for the audit trail (the mode in octal). */
function attrFields(attrs: InputAttributes): Fields {
  return {
    ...(attrs.size === undefined ? {} : { size: attrs.size }),
    ...(attrs.mode === undefined ? {} : { mode: (Number(attrs.mode) & 0o7777).toString(8) }),
    ...(attrs.uid === undefined ? {} : { uid: attrs.uid, gid: attrs.gid }),
    ...(attrs.mtime === undefined ? {} : { mtime: attrs.mtime }),
  };
}

export function toAttrs(s: Stats): Attributes {
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    atime: Math.floor(s.atimeMs / 1000),
    mtime: Math.floor(s.mtimeMs / 1000),
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The `ls -l` line OpenSSH's sftp client shows for `ls -l`. */
export function longname(name: string, s: Stats): string {
  const type = s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : s.isFIFO() ? 'p' : s.isSocket() ? 's' : '-';
  const bits = 'rwxrwxrwx'
    .split('')
    .map((c, i) => (s.mode & (0o400 >> i) ? c : '-'))
    .join('');
  const d = s.mtime;
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  return `${type}${bits} ${String(s.nlink).padStart(4)} ${String(s.uid).padEnd(8)} ${String(s.gid).padEnd(8)} ${String(s.size).padStart(8)} ${date} ${name}`;
}

function statusOf(err: unknown): number {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return STATUS.NO_SUCH_FILE;
  if (code === 'EACCES' || code === 'EPERM') return STATUS.PERMISSION_DENIED;
  return STATUS.FAILURE;
}

async function applyAttrs(path: string | FileHandle, attrs: InputAttributes): Promise<void> {
  const onFile = typeof path !== 'string';
  if (attrs.size !== undefined) await (onFile ? path.truncate(attrs.size) : truncate(path, attrs.size));
  if (attrs.uid !== undefined && attrs.gid !== undefined) {
    await (onFile ? path.chown(attrs.uid, attrs.gid) : chown(path, attrs.uid, attrs.gid));
  }
  if (attrs.mode !== undefined)
    await (onFile ? path.chmod(Number(attrs.mode) & 0o7777) : chmod(path, Number(attrs.mode) & 0o7777));
  if (attrs.atime !== undefined && attrs.mtime !== undefined) {
    await (onFile ? path.utimes(attrs.atime, attrs.mtime) : utimes(path, attrs.atime, attrs.mtime));
  }
}

export interface ReadRequest {
  readonly kind: 'read';
  readonly reqid: number;
  readonly handle: Buffer;
  readonly offset: number;
  readonly length: number;
}
export interface WriteRequest {
  readonly kind: 'write';
  readonly reqid: number;
  readonly handle: Buffer;
  readonly offset: number;
  readonly data: Buffer;
}
export type FileRequest = ReadRequest | WriteRequest;
export type Request = FileRequest | { readonly kind: 'op'; readonly reqid: number; readonly op: () => Promise<void> };

const sizeOf = (r: FileRequest) => (r.kind === 'read' ? r.length : r.data.length);

/**
 * `first` and the requests of its kind on its handle queued right behind it: at most BATCH_BYTES (or `first` alone
 * when it is bigger) and BATCH_REQUESTS (well under IOV_MAX).
 */
export function takeBatch(first: FileRequest, queue: Request[]): FileRequest[] {
  const batch = [first];
  let bytes = sizeOf(first);
  for (let next = queue[0]; next?.kind === first.kind && batch.length < BATCH_REQUESTS; next = queue[0]) {
    if (bytes + sizeOf(next) > BATCH_BYTES || !next.handle.equals(first.handle)) break;
    batch.push(next);
    queue.shift();
    bytes += sizeOf(next);
  }
  return batch;
}

interface Run<R extends FileRequest> {
  readonly offset: number;
  end: number;
  readonly requests: R[];
}

/**
 * The batch's file ranges in offset order, adjacent ones joined into runs (pipelining clients send requests a little
 * out of order). Overlapping ranges join too when `overlap` says so (reads); otherwise undefined (writes, which must
 * then land in request order).
 */
export function runsOf<R extends FileRequest>(batch: readonly R[], overlap: boolean): Run<R>[] | undefined {
  const runs: Run<R>[] = [];
  for (const r of [...batch].sort((x, y) => x.offset - y.offset)) {
    const last = runs.at(-1);
    const end = r.offset + sizeOf(r);
    if (!last || r.offset > last.end) runs.push({ offset: r.offset, end, requests: [r] });
    else if (r.offset === last.end || overlap) {
      last.end = Math.max(last.end, end);
      last.requests.push(r);
    } else return undefined;
  }
  return runs;
}

/** Writes all of `buffers` at `position`, however the kernel splits it. */
async function writeAll(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  const rest = buffers;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, at);
    at += bytesWritten;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= (rest[0] as Buffer).length) skip -= (rest.shift() as Buffer).length;
    if (skip > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
  }
}

/** Reads into `buf` from `position` until it is full or the file ends; the number of bytes read. */
async function readFull(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** Serves one sftp channel until the client closes it. */
export function serveSftp(accept: () => unknown, options: SftpOptions): Promise<void> {
  const sftp = accept() as SFTPWrapper;
  const maxHandles = options.maxHandles ?? 256;
  const handles = new Map<number, Handle>();
  let next = 1;
  const at = (p: string) => resolve(options.cwd, p);
  const handleId = (buf: Buffer) => (buf.length === 4 ? buf.readUInt32BE(0) : -1);
  const newHandle = (h: Handle): Buffer => {
    const id = next++;
    handles.set(id, h);
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(id);
    return buf;
  };
  // Requests are served one at a time, in order, as OpenSSH's sftp-server does: scp (unlike `sftp get`) treats
  // data arriving out of order as a gap and truncates the copy there. Reads or writes queued back to back on one
  // handle (what scp, sftp and `krun cp` pipeline) are served together: one file system call per contiguous range.
  const queue: Request[] = [];
  const credit = queueCredit(sftp, options.queueLimit);
  const bytesOf = (r: Request) => (r.kind === 'write' ? r.data.length : 0);
  let idle: Promise<void> = Promise.resolve();
  let pumping = false;
  const enqueue = (request: Request) => {
    queue.push(request);
    credit.add(bytesOf(request));
    options.onQueued?.(credit);
    if (!pumping) idle = pump();
  };
  const pump = async () => {
    pumping = true;
    for (let request = queue.shift(); request; request = queue.shift()) {
      if (request.kind === 'op') {
        const { reqid, op } = request;
        await op().catch((err: unknown) => sftp.status(reqid, statusOf(err), (err as Error).message));
        credit.done(0);
      } else {
        const batch = takeBatch(request, queue);
        await serveBatch(batch).catch((err: unknown) => {
          for (const r of batch) sftp.status(r.reqid, statusOf(err), (err as Error).message);
        });
        for (const r of batch) credit.done(bytesOf(r));
      }
    }
    pumping = false;
  };
  /** Queues `op`, answering its failure with the matching status. */
  const run = (reqid: number, op: () => Promise<void>) => enqueue({ kind: 'op', reqid, op });
  const ok = (reqid: number) => sftp.status(reqid, STATUS.OK);
  /** Queues `op` and answers OK once it's done. */
  const okAfter = (reqid: number, op: () => Promise<unknown>) =>
    run(reqid, async () => {
      await op();
      ok(reqid);
    });
  /** Runs `op`, then records the event with its outcome; failures still reach the client as statuses. */
  const audited = async <T>(event: AuditEvent, fields: Fields, op: () => Promise<T>): Promise<T> => {
    try {
      const result = await op();
      options.audit.record(event, event.replace('.', ' '), fields);
      return result;
    } catch (err) {
      options.audit.record(event, event.replace('.', ' '), { ...fields, error: (err as Error).message }, 'warn');
      throw err;
    }
  };
  /** Audits and queues a path operation answered with OK. */
  const okAudited = (reqid: number, event: AuditEvent, fields: Fields, op: () => Promise<unknown>) =>
    okAfter(reqid, () => audited(event, fields, op));
  const closed = (h: OpenFile) =>
    options.audit.record('sftp.close', 'sftp close', {
      path: h.path,
      bytesRead: h.bytesRead,
      bytesWritten: h.bytesWritten,
    });
  class BadHandle extends Error {}
  const openFile = (buf: Buffer): OpenFile => {
    const h = handles.get(handleId(buf));
    if (h?.kind === 'file') return h;
    throw new BadHandle('invalid handle');
  };
  const file = (buf: Buffer): FileHandle => openFile(buf).file;
  // One buffer reused for every read batch: ssh2's data() copies it into the outgoing packet at once.
  let scratch = Buffer.alloc(0);
  const serveBatch = async (batch: readonly FileRequest[]): Promise<void> => {
    const h = openFile((batch[0] as FileRequest).handle);
    const fh = h.file;
    if (batch[0]?.kind === 'write') {
      const writes = batch as readonly WriteRequest[];
      const runs = runsOf(writes, false) ?? writes.map((r) => ({ offset: r.offset, end: 0, requests: [r] }));
      for (const run of runs)
        await writeAll(
          fh,
          run.requests.map((r) => r.data),
          run.offset,
        );
      h.bytesWritten += writes.reduce((n, r) => n + r.data.length, 0);
      for (const r of writes) ok(r.reqid);
      return;
    }
    const reads = batch as readonly ReadRequest[];
    const runs = runsOf(reads, true) as Run<ReadRequest>[];
    const total = runs.reduce((sum, run) => sum + run.end - run.offset, 0);
    if (scratch.length < total) scratch = Buffer.allocUnsafe(total);
    const served = new Map<ReadRequest, Buffer | undefined>();
    let at = 0;
    for (const run of runs) {
      const buf = scratch.subarray(at, at + run.end - run.offset);
      at += buf.length;
      const got = await readFull(fh, buf, run.offset);
      h.bytesRead += got;
      for (const r of run.requests) {
        const start = r.offset - run.offset;
        served.set(r, start < got ? buf.subarray(start, Math.min(start + r.length, got)) : undefined);
      }
    }
    // Answers go out in request order, whatever order the file was read in.
    for (const r of reads) {
      const data = served.get(r);
      if (data) sftp.data(r.reqid, data);
      else sftp.status(r.reqid, STATUS.EOF);
    }
  };

  sftp.on('OPEN', (reqid, filename, flags, attrs) =>
    run(reqid, async () => {
      if (handles.size >= maxHandles) return void sftp.status(reqid, STATUS.FAILURE, 'too many open files');
      const mode = attrs.mode === undefined ? 0o644 : attrs.mode & 0o7777;
      const path = at(filename);
      const fh = await audited('sftp.open', { path, flags: flagNames(flags) }, () =>
        open(path, openFlags(flags), mode),
      );
      sftp.handle(reqid, newHandle({ kind: 'file', file: fh, path, bytesRead: 0, bytesWritten: 0 }));
    }),
  );
  sftp.on('READ', (reqid, handle, offset, length) =>
    enqueue({ kind: 'read', reqid, handle: Buffer.from(handle), offset, length: Math.min(length, MAX_READ) }),
  );
  // ssh2 may reuse the packet's memory once this handler returns: keep a copy for the queued write.
  sftp.on('WRITE', (reqid, handle, offset, incoming) =>
    enqueue({ kind: 'write', reqid, handle: Buffer.from(handle), offset, data: Buffer.from(incoming) }),
  );
  sftp.on('FSTAT', (reqid, handle) =>
    run(reqid, async () => void sftp.attrs(reqid, toAttrs(await file(handle).stat()))),
  );
  sftp.on('FSETSTAT', (reqid, handle, attrs) =>
    okAfter(reqid, async () => {
      const h = openFile(handle);
      await audited('sftp.setstat', { path: h.path, ...attrFields(attrs) }, () => applyAttrs(h.file, attrs));
    }),
  );
  sftp.on('CLOSE', (reqid, handle) =>
    okAfter(reqid, async () => {
      const id = handleId(handle);
      const h = handles.get(id);
      if (!h) throw new BadHandle('invalid handle');
      handles.delete(id);
      if (h.kind === 'file') {
        closed(h);
        await h.file.close();
      }
    }),
  );
  sftp.on('OPENDIR', (reqid, path) =>
    run(reqid, async () => {
      if (handles.size >= maxHandles) return void sftp.status(reqid, STATUS.FAILURE, 'too many open files');
      const dir = at(path);
      if (!(await stat(dir)).isDirectory()) return void sftp.status(reqid, STATUS.FAILURE, 'not a directory');
      sftp.handle(reqid, newHandle({ kind: 'dir', path: dir }));
    }),
  );
  sftp.on('READDIR', (reqid, handle) =>
    run(reqid, async () => {
      const h = handles.get(handleId(handle));
      if (h?.kind !== 'dir') throw new BadHandle('invalid handle');
      if (!h.entries) {
        h.entries = [];
        for (const name of ['.', '..', ...(await readdir(h.path))]) {
          const s = await lstat(resolve(h.path, name)).catch(() => undefined);
          if (s) h.entries.push({ filename: name, longname: longname(name, s), attrs: toAttrs(s) });
        }
      }
      // A chunk per reply keeps each NAME packet small; the client reads until EOF.
      const chunk = h.entries.splice(0, DIR_CHUNK);
      if (chunk.length === 0) sftp.status(reqid, STATUS.EOF);
      else sftp.name(reqid, chunk);
    }),
  );
  sftp.on('LSTAT', (reqid, path) => run(reqid, async () => void sftp.attrs(reqid, toAttrs(await lstat(at(path))))));
  sftp.on('STAT', (reqid, path) => run(reqid, async () => void sftp.attrs(reqid, toAttrs(await stat(at(path))))));
  sftp.on('SETSTAT', (reqid, path, attrs) =>
    okAudited(reqid, 'sftp.setstat', { path: at(path), ...attrFields(attrs) }, () => applyAttrs(at(path), attrs)),
  );
  sftp.on('REMOVE', (reqid, path) => okAudited(reqid, 'sftp.remove', { path: at(path) }, () => unlink(at(path))));
  sftp.on('RMDIR', (reqid, path) => okAudited(reqid, 'sftp.rmdir', { path: at(path) }, () => rmdir(at(path))));
  sftp.on('MKDIR', (reqid, path, attrs) => {
    const mode = attrs.mode === undefined ? 0o755 : Number(attrs.mode) & 0o7777;
    okAudited(reqid, 'sftp.mkdir', { path: at(path), mode: mode.toString(8) }, () => mkdir(at(path), { mode }));
  });
  sftp.on('RENAME', (reqid, from, to) =>
    run(reqid, async () => {
      // SFTP v3 rename must not overwrite an existing target.
      const exists = await lstat(at(to)).then(
        () => true,
        () => false,
      );
      const fields = { path: at(from), to: at(to) };
      if (exists) {
        options.audit.record('sftp.rename', 'sftp rename', { ...fields, error: 'target exists' }, 'warn');
        return void sftp.status(reqid, STATUS.FAILURE, 'target exists');
      }
      await audited('sftp.rename', fields, () => rename(at(from), at(to)));
      ok(reqid);
    }),
  );
  sftp.on('REALPATH', (reqid, path) =>
    run(reqid, async () => {
      const full = await realpath(at(path)).catch(() => at(path));
      sftp.name(reqid, [{ filename: full, longname: full, attrs: {} as Attributes }]);
    }),
  );
  sftp.on('READLINK', (reqid, path) =>
    run(reqid, async () => {
      const target = await readlink(at(path));
      sftp.name(reqid, [{ filename: target, longname: target, attrs: {} as Attributes }]);
    }),
  );
  sftp.on('SYMLINK', (reqid, linkPath, targetPath) =>
    okAudited(reqid, 'sftp.symlink', { path: at(linkPath), to: targetPath }, () => symlink(targetPath, at(linkPath))),
  );
  // The client's EOF ends the subsystem: close our side too, or OpenSSH waits for the channel forever.
  // scp judges success by ssh's exit status, so the channel reports 0 first, as sshd does when sftp-server exits.
  // ssh2 has no public call for that on an sftp channel; its protocol object is reached narrowly here.
  sftp.on('end', () => {
    void idle.then(() => {
      const raw = sftp as unknown as {
        _protocol?: { exitStatus(id: number, status: number): void };
        outgoing?: { id: number; state: string };
      };
      if (raw._protocol && raw.outgoing?.state === 'open') raw._protocol.exitStatus(raw.outgoing.id, 0);
      sftp.end();
    });
  });
  return new Promise((done) => {
    sftp.on('close', () => {
      for (const h of handles.values()) {
        if (h.kind !== 'file') continue;
        closed(h);
        void h.file.close().catch(() => {});
      }
      handles.clear();
      done();
    });
  });
}
