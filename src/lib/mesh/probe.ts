// What the machine offers the mesh: binaries by path or on PATH.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A path, or a name found on PATH. */
export async function findable(name: string, env: Readonly<Record<string, string | undefined>>): Promise<boolean> {
  if (name.includes('/')) return executable(name);
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (await executable(join(dir, name))) return true;
  }
  return false;
}
