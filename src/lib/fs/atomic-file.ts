// Files holding credentials are never seen half-written: write a temporary file beside the target with the final
// mode, flush it to disk, then rename it over the target (atomic on POSIX file systems).
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number,
  owner?: Owner,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(tmp, 'wx', mode);
  try {
    await file.writeFile(data);
    await file.chmod(mode); // the umask may have narrowed the mode given to open()
    if (owner) await file.chown(owner.uid, owner.gid);
    await file.sync();
    await file.close();
    await rename(tmp, path);
  } catch (err) {
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}
