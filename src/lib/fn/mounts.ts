// Bind mounts, shipped with the Pod. Small trees (what one ConfigMap holds) become ConfigMap volumes: nested paths
// through `items[].path`, binary files as binaryData. Larger trees go to an emptyDir that an init container fills
// with `tar -x` from its stdin, which krun feeds over the attach stream. Sockets, devices and directory symlinks
// have no form in either and are refused; a ConfigMap keeps no empty directories.
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { KubeObject } from '../kube/client.ts';
import { FnRuntimeError } from './errors.ts';
import type { FnMount } from './spec.ts';
import type { TarEntry } from './tar.ts';

/** What fits in one ConfigMap with room for its metadata (the API server's limit is 1 MiB per object). */
export const MAX_CONFIGMAP_BYTES = 900 * 1024;
/** Where the init container sees mount N's emptyDir: `/krun-mounts/N`. */
export const INIT_MOUNT_ROOT = '/krun-mounts';

interface Listed {
  readonly isFile: boolean;
  /** Files and directories, relative to the source, parents before children, sorted. */
  readonly entries: readonly (TarEntry & { readonly source?: string })[];
  readonly bytes: number;
}

async function list(mount: FnMount, described: string): Promise<Listed> {
  const info = await stat(mount.source).catch(() => {
    throw new FnRuntimeError(`--mount ${described}: ${mount.source} does not exist`);
  });
  if (info.isFile()) {
    const name = basename(mount.source);
    const entries = [{ name, type: 'file' as const, source: mount.source, size: info.size, mode: info.mode }];
    return { isFile: true, entries, bytes: info.size };
  }
  const entries: TarEntry[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    const children = await readdir(join(mount.source, rel), { withFileTypes: true });
    // Sorted: the same tree always makes the same objects.
    for (const child of children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const name = rel ? `${rel}/${child.name}` : child.name;
      const full = join(mount.source, name);
      const st = child.isSymbolicLink() ? await stat(full) : await lstat(full);
      if (st.isDirectory()) {
        if (child.isSymbolicLink())
          throw new FnRuntimeError(`--mount ${described}: ${full} is a symlink to a directory`);
        entries.push({ name, type: 'directory', size: 0, mode: st.mode });
        await walk(name);
      } else if (st.isFile()) {
        bytes += st.size;
        entries.push({ name, type: 'file', source: full, size: st.size, mode: st.mode });
      } else {
        throw new FnRuntimeError(`--mount ${described}: ${full} is neither a file nor a directory`);
      }
    }
  };
  await walk('');
  return { isFile: false, entries, bytes };
}

const VALID_KEY = /^[-._a-zA-Z0-9]+$/;

export interface ConfigMapMount {
  readonly kind: 'configMap';
  readonly configMap: KubeObject;
  readonly volume: Record<string, unknown>;
  readonly volumeMount: Record<string, unknown>;
}

export interface StreamedMount {
  readonly kind: 'stream';
  readonly volume: Record<string, unknown>;
  readonly volumeMount: Record<string, unknown>;
  /** The init container's mount of the same emptyDir. */
  readonly initMount: Record<string, unknown>;
  /** Archive entries, named `N/…` (relative to INIT_MOUNT_ROOT). */
  readonly entries: readonly TarEntry[];
}

export type MountVolume = ConfigMapMount | StreamedMount;

/** How `mount` reaches the Pod: volume `mount-N`, and a ConfigMap `name` when the files fit in one. */
export async function mountVolume(
  mount: FnMount,
  n: number,
  object: { name: string; namespace: string; labels: Record<string, string> },
): Promise<MountVolume> {
  const described = `type=bind,source=${mount.source},target=${mount.target}`;
  const listed = await list(mount, described);
  const volumeName = `mount-${n}`;
  const fileName = listed.isFile ? listed.entries[0]?.name : undefined;
  const volumeMount = {
    name: volumeName,
    mountPath: mount.target,
    readOnly: true,
    // A file mount is the one file at the target itself.
    ...(fileName ? { subPath: fileName } : {}),
  };
  if (listed.bytes > MAX_CONFIGMAP_BYTES) {
    return {
      kind: 'stream',
      volume: { name: volumeName, emptyDir: {} },
      volumeMount,
      initMount: { name: volumeName, mountPath: `${INIT_MOUNT_ROOT}/${n}` },
      entries: listed.entries.map((e) => ({ ...e, name: `${n}/${e.name}` })),
    };
  }
  const data: Record<string, string> = {};
  const binaryData: Record<string, string> = {};
  const items: { key: string; path: string; mode: number }[] = [];
  for (const [i, entry] of listed.entries.entries()) {
    if (entry.type !== 'file' || !entry.source) continue;
    const content = await readFile(entry.source);
    const key = VALID_KEY.test(entry.name) && !entry.name.startsWith('..') ? entry.name : `file-${i}`;
    const text = content.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(content)) data[key] = text;
    else binaryData[key] = content.toString('base64');
    items.push({ key, path: entry.name, mode: entry.mode & 0o111 ? 0o555 : 0o444 });
  }
  return {
    kind: 'configMap',
    configMap: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: object,
      immutable: true,
      data,
      ...(Object.keys(binaryData).length > 0 ? { binaryData } : {}),
    },
    volume: { name: volumeName, configMap: { name: object.name, items } },
    volumeMount,
  };
}
