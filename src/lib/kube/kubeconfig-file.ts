// Builds kubeconfig documents and merges an entry into a kubeconfig file the way `gcloud container clusters
// get-credentials` does: same-named cluster, user and context replaced, everything else kept, current-context set.
// The file holds credentials: written atomically, mode 0600.
import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.ts';
import { writeFileAtomic } from '../fs/atomic-file.ts';

export interface KubeconfigEntry {
  readonly name: string;
  readonly server: string;
  readonly ca?: string | undefined;
  /** Either a static bearer token or an exec credential plugin. */
  readonly user: { readonly token: string } | { readonly exec: Readonly<Record<string, unknown>> };
  readonly namespace?: string | undefined;
}

interface Named {
  name: string;
  [k: string]: unknown;
}

export interface Kubeconfig {
  apiVersion: 'v1';
  kind: 'Config';
  clusters: Named[];
  users: Named[];
  contexts: Named[];
  'current-context': string;
  [k: string]: unknown;
}

export function kubeconfigOf(entry: KubeconfigEntry): Kubeconfig {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: entry.name,
        cluster: {
          server: entry.server,
          ...(entry.ca ? { 'certificate-authority-data': Buffer.from(entry.ca).toString('base64') } : {}),
        },
      },
    ],
    users: [{ name: entry.name, user: entry.user }],
    contexts: [
      {
        name: entry.name,
        context: { cluster: entry.name, user: entry.name, ...(entry.namespace ? { namespace: entry.namespace } : {}) },
      },
    ],
    'current-context': entry.name,
  };
}

function upsert(list: Named[] | undefined, item: Named): Named[] {
  return [...(list ?? []).filter((x) => x.name !== item.name), item];
}

/** Merges `entry` into the kubeconfig at `path` (created if absent). Returns the merged document. */
export async function mergeIntoFile(path: string, entry: KubeconfigEntry): Promise<Kubeconfig> {
  const { parse, stringify } = await import('yaml');
  let existing: Partial<Kubeconfig> = {};
  try {
    existing = (parse(await readFile(path, 'utf8')) ?? {}) as Partial<Kubeconfig>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UsageError(`can't merge into ${path}: ${(err as Error).message}`, {
        hints: ['fix or move the file, or print the kubeconfig to stdout instead (omit --merge)'],
      });
    }
  }
  const add = kubeconfigOf(entry);
  const merged: Kubeconfig = {
    ...existing,
    apiVersion: 'v1',
    kind: 'Config',
    clusters: upsert(existing.clusters, add.clusters[0] as Named),
    users: upsert(existing.users, add.users[0] as Named),
    contexts: upsert(existing.contexts, add.contexts[0] as Named),
    'current-context': entry.name,
  };
  await writeFileAtomic(path, stringify(merged), 0o600);
  return merged;
}
