// kubelet's AtomicWriter layout for Secret, ConfigMap and projected token volumes, so apps that watch mounted files
// (or read them with the usual symlink-following APIs) see exactly what they would in a Pod:
//
//   dir/..2026_11_21_10_00_00.123456789/<key>   the payload of one version
//   dir/..data -> ..2026_11_21_10_00_00.123456789
//   dir/<key>  -> ..data/<key>
//
// An update writes a new version directory and swaps `..data` with one rename, so a reader sees either the old
// set of files or the new one, never a mix.
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  unlink,
} from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError } from '../errors.ts';
import { type Owner, writeFileAtomic } from './atomic-file.ts';

export const DATA_LINK = '..data';

export interface ProjectedFile {
  readonly data: Uint8Array;
  readonly mode: number;
  /** This file's owner, instead of the directory's. */
  readonly owner?: Owner | undefined;
}

export interface ProjectOptions {
  readonly owner?: Owner | undefined;
  readonly now?: Date;
}

/** Keys become file names: the same rules the API server applies to ConfigMap and Secret keys. */
export function checkKey(key: string): void {
  if (!/^[-._a-zA-Z0-9]+$/.test(key) || key === '.' || key === '..' || key.startsWith('..')) {
    throw new UsageError(`"${key}" is not a valid file name for a mounted key`);
  }
}

function versionName(now: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `..${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.`;
}

async function currentVersion(dir: string): Promise<string | undefined> {
  try {
    return await readlink(join(dir, DATA_LINK));
  } catch {
    return undefined;
  }
}

async function unchanged(dir: string, version: string, files: ReadonlyMap<string, ProjectedFile>): Promise<boolean> {
  const existing = await readdir(join(dir, version)).catch(() => undefined);
  if (!existing || existing.length !== files.size) return false;
  for (const [key, file] of files) {
    try {
      const path = join(dir, version, key);
      const [data, info] = await Promise.all([readFile(path), stat(path)]);
      if ((info.mode & 0o777) !== file.mode || !Buffer.from(file.data).equals(data)) return false;
      if (file.owner && (info.uid !== file.owner.uid || info.gid !== file.owner.gid)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** Makes `dir` hold exactly `files`. Returns false, touching nothing, when it already does. */
export async function writeProjected(
  dir: string,
  files: ReadonlyMap<string, ProjectedFile>,
  options: ProjectOptions = {},
): Promise<boolean> {
  for (const key of files.keys()) checkKey(key);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const old = await currentVersion(dir);
  if (old && (await unchanged(dir, old, files))) return false;
  const version = await mkdtemp(join(dir, versionName(options.now ?? new Date())));
  // mkdtemp makes it 0700; like kubelet's, it must be traversable by the app's user (file modes do the guarding).
  await chmod(version, 0o755);
  for (const [key, file] of files)
    await writeFileAtomic(join(version, key), file.data, file.mode, file.owner ?? options.owner);
  const tmpLink = join(dir, `${DATA_LINK}_tmp`);
  await rm(tmpLink, { force: true });
  await symlink(basename(version), tmpLink);
  await rename(tmpLink, join(dir, DATA_LINK));
  for (const key of files.keys()) {
    await symlink(join(DATA_LINK, key), join(dir, key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
  for (const entry of await readdir(dir)) {
    if (entry.startsWith('..') || files.has(entry)) continue;
    const target = await readlink(join(dir, entry)).catch(() => undefined);
    if (target?.startsWith(`${DATA_LINK}/`)) await unlink(join(dir, entry));
  }
  if (old && old !== basename(version)) await rm(join(dir, old), { recursive: true, force: true });
  return true;
}
