// Secrets and ConfigMaps mounted as files, declared as KRUN_MOUNTS=secret:NAME:/path[:key],configmap:NAME:/path[:key]
// (or repeated --mount flags). Each key becomes a file named after it, in kubelet's atomic `..data` layout; with
// `:key`, only that key is mounted. Paths are Pod paths, placed under the base directory when not running as root.
import { join } from 'node:path';
import { NotFoundError, UsageError } from '../errors.ts';
import type { Owner } from '../fs/atomic-file.ts';
import { checkKey, type ProjectedFile, writeProjected } from '../fs/projected-dir.ts';
import { apiStatus, type KubeClient } from '../kube/client.ts';

export interface Mount {
  readonly kind: 'secret' | 'configmap';
  readonly name: string;
  /** Absolute Pod path of the directory. */
  readonly path: string;
  readonly key?: string;
}

const SYNTAX = 'secret:NAME:/path[:key] or configmap:NAME:/path[:key], separated by commas';

export function parseMounts(text: string, source: string): Mount[] {
  const mounts: Mount[] = [];
  for (const item of text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [kind, name, path, key, ...rest] = item.split(':');
    const fail = (why: string) =>
      new UsageError(`${source}: "${item}" ${why}`, {
        hints: [`use ${SYNTAX}`, 'e.g. KRUN_MOUNTS=secret:db-creds:/etc/db'],
      });
    if (kind !== 'secret' && kind !== 'configmap') throw fail('must start with secret: or configmap:');
    if (!name || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) throw fail('needs a valid object name');
    if (!path?.startsWith('/')) throw fail('needs an absolute path, as a Pod mountPath has');
    // As the API server rejects it in a mountPath; here it would also escape the base directory.
    if (path.split('/').includes('..')) throw fail('must not contain ".." (it would leave the base directory)');
    if (rest.length > 0) throw fail('has too many ":" parts');
    if (key !== undefined) {
      try {
        checkKey(key);
      } catch {
        throw fail(`names an invalid key "${key}"`);
      }
    }
    mounts.push({ kind, name, path, ...(key ? { key } : {}) });
  }
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.path)) throw new UsageError(`${source}: two mounts share the path ${m.path}`);
    seen.add(m.path);
  }
  return mounts;
}

interface KeyedObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** Secret files are readable by their owner only (kubelet's default is 0644; credentials deserve less). */
const MODES = { secret: 0o600, configmap: 0o644 } as const;

export function mountFiles(mount: Mount, object: KeyedObject): Map<string, ProjectedFile> {
  const files = new Map<string, ProjectedFile>();
  const mode = MODES[mount.kind];
  for (const [k, v] of Object.entries(object.data ?? {})) {
    files.set(k, { data: mount.kind === 'secret' ? Buffer.from(v, 'base64') : Buffer.from(v, 'utf8'), mode });
  }
  for (const [k, v] of Object.entries(object.binaryData ?? {})) files.set(k, { data: Buffer.from(v, 'base64'), mode });
  if (mount.key === undefined) return files;
  const one = files.get(mount.key);
  if (!one) {
    throw new NotFoundError(`${mount.kind} ${mount.name} has no key "${mount.key}"`, {
      hints: [`keys present: ${[...files.keys()].join(', ') || '(none)'}`],
    });
  }
  return new Map([[mount.key, one]]);
}

export function objectPath(namespace: string, mount: Mount): string {
  const resource = mount.kind === 'secret' ? 'secrets' : 'configmaps';
  return `/api/v1/namespaces/${namespace}/${resource}/${mount.name}`;
}

/** Reads the object and makes the mounted directory match it. Returns whether anything changed. */
export async function syncMount(
  client: KubeClient,
  namespace: string,
  mount: Mount,
  baseDir: string,
  owner?: Owner,
  signal?: AbortSignal,
): Promise<boolean> {
  let object: KeyedObject;
  try {
    object = await client.get<KeyedObject>(objectPath(namespace, mount), signal ? { signal } : {});
  } catch (err) {
    if (apiStatus(err) !== 404) throw err;
    throw new NotFoundError(
      `${mount.kind} ${mount.name} not found in namespace ${namespace} (mounted at ${mount.path})`,
      {
        hints: [`kubectl -n ${namespace} get ${mount.kind} ${mount.name}`, 'or fix KRUN_MOUNTS / --mount'],
      },
    );
  }
  return writeProjected(join(baseDir, mount.path), mountFiles(mount, object), { owner });
}
