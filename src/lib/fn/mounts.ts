// Bind mounts become ConfigMap volumes: the files under the source are read here and shipped with the Pod. Nested
// trees work (ConfigMap items map flat keys to paths); the limit is what one ConfigMap holds. Sockets, devices and
// directory symlinks have no ConfigMap form and are refused; empty directories are not kept.
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { KubeObject } from '../kube/client.ts';
import { FnRuntimeError } from './errors.ts';
import type { FnMount } from './spec.ts';

/** What fits in one ConfigMap with room for its metadata (the API server's limit is 1 MiB per object). */
export const MAX_MOUNT_BYTES = 900 * 1024;

export interface MountVolume {
  readonly configMap: KubeObject;
  readonly volume: Record<string, unknown>;
  readonly volumeMount: Record<string, unknown>;
}

interface File {
  readonly path: string;
  readonly content: Buffer;
  readonly executable: boolean;
}

const VALID_KEY = /^[-._a-zA-Z0-9]+$/;

async function collect(root: string, rel: string, files: File[], budget: { bytes: number }, mount: string) {
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  // Sorted: the same tree always makes the same ConfigMap.
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    const full = join(root, path);
    const info = entry.isSymbolicLink() ? await stat(full) : await lstat(full);
    if (info.isDirectory()) {
      if (entry.isSymbolicLink()) throw new FnRuntimeError(`--mount ${mount}: ${full} is a symlink to a directory`);
      await collect(root, path, files, budget, mount);
    } else if (info.isFile()) {
      budget.bytes -= info.size;
      if (budget.bytes < 0) throw tooLarge(mount);
      files.push({ path, content: await readFile(full), executable: (info.mode & 0o111) !== 0 });
    } else {
      throw new FnRuntimeError(`--mount ${mount}: ${full} is neither a file nor a directory`);
    }
  }
}

function tooLarge(mount: string): FnRuntimeError {
  return new FnRuntimeError(`--mount ${mount}: more than ${MAX_MOUNT_BYTES / 1024} KiB of files`, {
    hints: [
      'krun ships mounted files in a ConfigMap, which holds at most about 1 MiB',
      'mount a smaller directory, or bake the files into the function image',
    ],
  });
}

/** The ConfigMap, volume and volumeMount that put `mount.source` at `mount.target`, read-only. */
export async function mountVolume(
  mount: FnMount,
  volumeName: string,
  object: { name: string; namespace: string; labels: Record<string, string> },
): Promise<MountVolume> {
  const described = `type=bind,source=${mount.source},target=${mount.target}`;
  const info = await stat(mount.source).catch(() => {
    throw new FnRuntimeError(`--mount ${described}: ${mount.source} does not exist`);
  });
  const files: File[] = [];
  if (info.isFile()) {
    if (info.size > MAX_MOUNT_BYTES) throw tooLarge(described);
    files.push({ path: basename(mount.source), content: await readFile(mount.source), executable: false });
  } else {
    await collect(mount.source, '', files, { bytes: MAX_MOUNT_BYTES }, described);
  }
  const data: Record<string, string> = {};
  const binaryData: Record<string, string> = {};
  const items = files.map((file, n) => {
    const key = VALID_KEY.test(file.path) && !file.path.startsWith('..') ? file.path : `file-${n}`;
    const text = file.content.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(file.content)) data[key] = text;
    else binaryData[key] = file.content.toString('base64');
    return { key, path: file.path, mode: file.executable ? 0o555 : 0o444 };
  });
  const configMap: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: object,
    immutable: true,
    data,
    ...(Object.keys(binaryData).length > 0 ? { binaryData } : {}),
  };
  return {
    configMap,
    volume: { name: volumeName, configMap: { name: object.name, items } },
    volumeMount: {
      name: volumeName,
      mountPath: mount.target,
      readOnly: true,
      // A file mount is the one item at the target itself.
      ...(info.isFile() ? { subPath: files[0]?.path } : {}),
    },
  };
}
