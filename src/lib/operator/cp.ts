// `krun cp SRC DST`: files and directory trees to or from a workload over SFTP (the SSH debug server's in-process
// subsystem: no tar or shell needed in the image), with modes preserved. Like cp: a DST that is an existing
// directory receives SRC under its own name. Large files show a progress bar when stderr is a terminal.
import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import type { KrunContext } from '../context.ts';
import { KrunError, UsageError } from '../errors.ts';
import { byteProgress } from '../ui/progress.ts';
import { connectSsh, type SshOptions } from './ssh-connect.ts';

export interface CopySpec {
  readonly target?: string;
  readonly path: string;
}

/** `TARGET:/path` (TARGET a service name, `host:port`, or an `https://host[:port]` URL) or a local path. */
export function parseCopySpec(text: string): CopySpec {
  const url = /^(https?:\/\/[^/]+?):([^\d/].*|\/.*)$/.exec(text);
  if (url) return { target: url[1] as string, path: url[2] as string };
  if (text.startsWith('/') || text.startsWith('.') || !text.includes(':')) return { path: text };
  const remote = /^([^/:]+(?::\d+)?):(.*)$/.exec(text);
  if (remote?.[2]) return { target: remote[1] as string, path: remote[2] };
  return { path: text };
}

export interface CopyResult {
  readonly files: number;
  readonly bytes: number;
}

const p = <T>(fn: (cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

const remoteStat = (sftp: SFTPWrapper, path: string): Promise<Stats | undefined> =>
  p<Stats>((cb) => sftp.stat(path, cb)).catch(() => undefined);

const localStat = (path: string) => stat(path).catch(() => undefined);

/**
 * SFTP requests in flight per file transfer: 16 of 128 KiB, 2 MiB, ssh2's channel window (more would only queue in
 * ssh2's buffers). ssh2 defaults to 64 of 32 KiB, and splits each 32 KiB write in two against non-OpenSSH servers.
 */
const PIPELINE = { chunkSize: 128 * 1024, concurrency: 16 } as const;

/**
 * Lets ssh2's client send and ask for PIPELINE.chunkSize at once. It assumes 34,000-byte packets for servers that are
 * not OpenSSH; krun's server takes OpenSSH's 256 KiB (ssh2's server side), but ssh2's server can't advertise that
 * with limits@openssh.com, so the two fields are set here (narrowly: ssh2 has no public call for it).
 */
function allowChunks(sftp: SFTPWrapper): SFTPWrapper {
  const raw = sftp as unknown as { _maxReadLen?: number; _maxWriteLen?: number };
  if (typeof raw._maxReadLen === 'number') raw._maxReadLen = Math.max(raw._maxReadLen, PIPELINE.chunkSize);
  if (typeof raw._maxWriteLen === 'number') raw._maxWriteLen = Math.max(raw._maxWriteLen, PIPELINE.chunkSize);
  return sftp;
}

/** Files from this size up show a progress bar (on a terminal). */
const LARGE = 1024 * 1024;

/** One SFTP fast transfer, with a progress bar for a large file. */
async function transfer(
  ctx: KrunContext,
  label: string,
  size: number,
  run: (step: (done: number) => void, cb: (err: Error | null | undefined) => void) => void,
): Promise<void> {
  const progress = size >= LARGE ? byteProgress(ctx, label, size) : undefined;
  let ok = false;
  try {
    await new Promise<void>((resolve, reject) =>
      run(
        (done) => progress?.update(done),
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    ok = true;
  } finally {
    progress?.end(ok);
  }
}

export async function runCopy(src: string, dst: string, options: SshOptions, ctx: KrunContext): Promise<CopyResult> {
  const from = parseCopySpec(src);
  const to = parseCopySpec(dst);
  if ((from.target === undefined) === (to.target === undefined)) {
    throw new UsageError('exactly one of SRC and DST must be remote (TARGET:/path)', {
      hints: ['krun cp ./dump.sql my-service:/tmp/dump.sql', 'krun cp my-service:/var/log/app ./logs'],
    });
  }
  const conn = await connectSsh((from.target ?? to.target) as string, options, ctx);
  const result = { files: 0, bytes: 0 };
  try {
    const sftp = allowChunks(await p<SFTPWrapper>((cb) => conn.client.sftp(cb)));
    const fail = (what: string, err: unknown): never => {
      throw new KrunError(`${what}: ${(err as Error).message}`, { cause: err });
    };
    if (to.target !== undefined) {
      const top = (await localStat(from.path)) ?? fail(`can't read ${from.path}`, new Error('no such file'));
      const existing = await remoteStat(sftp, to.path);
      const dest = existing?.isDirectory() ? posix.join(to.path, basename(from.path)) : to.path;
      const upload = async (local: string, remote: string, isDir: boolean, mode: number): Promise<void> => {
        if (isDir) {
          if (!(await remoteStat(sftp, remote))?.isDirectory()) {
            await p<void>((cb) => sftp.mkdir(remote, { mode }, (e) => cb(e, undefined))).catch((e) =>
              fail(`can't create ${remote}`, e),
            );
          }
          for (const entry of await readdir(local, { withFileTypes: true })) {
            const s = await stat(join(local, entry.name));
            await upload(join(local, entry.name), posix.join(remote, entry.name), s.isDirectory(), s.mode & 0o7777);
          }
        } else {
          const { size } = await stat(local);
          await transfer(ctx, basename(local), size, (step, cb) =>
            sftp.fastPut(local, remote, { mode, ...PIPELINE, step: (done) => step(done) }, cb),
          ).catch((e) => fail(`can't upload ${local} to ${remote}`, e));
          result.files += 1;
          result.bytes += size;
        }
        await p<void>((cb) => sftp.chmod(remote, mode, (e) => cb(e, undefined))).catch((e) =>
          fail(`can't set the mode of ${remote}`, e),
        );
      };
      await upload(from.path, dest, top.isDirectory(), top.mode & 0o7777);
    } else {
      const top = (await remoteStat(sftp, from.path)) ?? fail(`can't read ${src}`, new Error('no such file'));
      const existing = await localStat(to.path);
      const dest = existing?.isDirectory() ? join(to.path, posix.basename(from.path)) : to.path;
      const download = async (remote: string, local: string, s: Stats): Promise<void> => {
        const mode = s.mode & 0o7777;
        if (s.isDirectory()) {
          await mkdir(local, { recursive: true, mode });
          const entries = await p<{ filename: string; attrs: Stats }[]>((cb) => sftp.readdir(remote, cb)).catch((e) =>
            fail(`can't list ${remote}`, e),
          );
          for (const entry of entries) {
            const child = posix.join(remote, entry.filename);
            const attrs = (await remoteStat(sftp, child)) ?? entry.attrs;
            await download(child, join(local, entry.filename), attrs);
          }
        } else {
          await transfer(ctx, posix.basename(remote), s.size, (step, cb) =>
            sftp.fastGet(remote, local, { ...PIPELINE, step: (done) => step(done) }, cb),
          ).catch((e) => fail(`can't download ${remote} to ${local}`, e));
          result.files += 1;
          result.bytes += s.size;
        }
        await chmod(local, mode);
      };
      await download(from.path, dest, top);
    }
    ctx.log.debug('copied', result);
    return result;
  } finally {
    await conn.close();
  }
}
