// Reads kubeconfig files the way kubectl does (KUBECONFIG may list several, merged first-wins), selects a context,
// and resolves it into what the REST client needs. Only static credentials are supported here; exec and
// auth-provider users get a clear error instead of a silent anonymous connection.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { KrunError, UsageError } from '../errors.ts';

export interface KubeConnection {
  readonly server: string;
  /** PEM bundle that verifies the server; undefined means the system roots. */
  readonly ca?: string | undefined;
  readonly insecureSkipTlsVerify?: boolean;
  readonly token?: string | undefined;
  /** Read on every request, so a rotated file (in-cluster tokens) is picked up. */
  readonly tokenFile?: string | undefined;
  /** Called on every request (it caches and refreshes itself): Google access tokens for GKE. */
  readonly tokenProvider?: (() => Promise<string>) | undefined;
  readonly clientCert?: string | undefined;
  readonly clientKey?: string | undefined;
  /** The context's namespace, if it names one. */
  readonly namespace?: string | undefined;
  /** Where the connection came from, for logs and --print-config. */
  readonly source: string;
}

interface Named<T> {
  name: string;
  [key: string]: unknown;
  value?: T;
}

interface RawConfig {
  'current-context'?: string;
  clusters?: Named<unknown>[];
  users?: Named<unknown>[];
  contexts?: Named<unknown>[];
}

interface RawCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
}

interface RawUser {
  token?: string;
  tokenFile?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  exec?: { command?: string };
  'auth-provider'?: { name?: string };
  username?: string;
}

interface RawContext {
  cluster?: string;
  user?: string;
  namespace?: string;
}

interface Entry<T> {
  readonly value: T;
  /** The directory of the file that defined it: relative paths in kubeconfig are relative to their file. */
  readonly dir: string;
}

/** The files named by KUBECONFIG (colon-separated, like kubectl), or ~/.kube/config. */
export function kubeconfigPaths(kubeconfig: string | undefined, home: string | undefined): string[] {
  if (kubeconfig) return kubeconfig.split(':').filter(Boolean);
  return home ? [join(home, '.kube', 'config')] : [];
}

async function readConfig(path: string): Promise<RawConfig | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KrunError(`can't read kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
  }
  const { parse } = await import('yaml');
  try {
    return (parse(text) ?? {}) as RawConfig;
  } catch (err) {
    throw new UsageError(`kubeconfig ${path} is not valid YAML: ${(err as Error).message}`, {
      hints: [`kubectl config view --kubeconfig ${path}`],
    });
  }
}

function collect<T>(
  configs: { config: RawConfig; dir: string }[],
  key: 'clusters' | 'users' | 'contexts',
  field: string,
) {
  const out = new Map<string, Entry<T>>();
  for (const { config, dir } of configs) {
    for (const item of config[key] ?? []) {
      if (item?.name && !out.has(item.name)) out.set(item.name, { value: (item[field] ?? {}) as T, dir });
    }
  }
  return out;
}

async function readMaybe(path: string | undefined, dir: string): Promise<string | undefined> {
  if (!path) return undefined;
  return readFile(isAbsolute(path) ? path : join(dir, path), 'utf8');
}

const decode = (data: string | undefined) => (data ? Buffer.from(data, 'base64').toString('utf8') : undefined);

/**
 * Loads the kubeconfig and resolves `context` (or the current context). Returns undefined when no file exists:
 * that is "no cluster configured", not an error.
 */
export async function loadKubeconfig(paths: readonly string[], context?: string): Promise<KubeConnection | undefined> {
  const configs: { config: RawConfig; dir: string }[] = [];
  for (const path of paths) {
    const config = await readConfig(path);
    if (config) configs.push({ config, dir: dirname(path) });
  }
  if (configs.length === 0) {
    if (context) {
      throw new UsageError(`--context ${context} given, but no kubeconfig file exists (${paths.join(':')})`, {
        hints: [
          '--kubeconfig PATH',
          'export KUBECONFIG=PATH',
          'krun kubeconfig --merge   # from your Google credentials',
        ],
      });
    }
    return undefined;
  }
  const contexts = collect<RawContext>(configs, 'contexts', 'context');
  const name = context ?? configs.find((c) => c.config['current-context'])?.config['current-context'];
  const source = `kubeconfig ${paths.join(':')}`;
  if (!name) {
    throw new UsageError(`${source} has no current-context`, {
      hints: ['--context NAME', 'kubectl config use-context NAME'],
    });
  }
  const ctx = contexts.get(name)?.value;
  if (!ctx) {
    throw new UsageError(`context "${name}" is not in ${source}`, {
      hints: [`kubectl config get-contexts`, ...[...contexts.keys()].slice(0, 5).map((c) => `--context ${c}`)],
    });
  }
  const cluster = ctx.cluster ? collect<RawCluster>(configs, 'clusters', 'cluster').get(ctx.cluster) : undefined;
  if (!cluster?.value.server) throw new UsageError(`context "${name}" in ${source} names no cluster with a server`);
  const user = ctx.user ? collect<RawUser>(configs, 'users', 'user').get(ctx.user) : undefined;
  const u = user?.value ?? {};
  if (u.exec || u['auth-provider']) {
    const kind = u.exec
      ? `exec plugin ${u.exec.command ?? ''}`.trim()
      : `auth-provider ${u['auth-provider']?.name ?? ''}`;
    throw new UsageError(`context "${name}" authenticates with an ${kind}, which krun does not execute`, {
      hints: [
        'krun kubeconfig --merge   # a context with a token from your Google credentials, for a GKE cluster',
        'give the context a token or client certificate (e.g. a ServiceAccount token kubeconfig)',
        'on Google Cloud, leave KUBECONFIG unset: krun finds the GKE cluster from the metadata server',
      ],
    });
  }
  const c = cluster.value;
  const udir = user?.dir ?? cluster.dir;
  return {
    server: c.server ?? '',
    ca: decode(c['certificate-authority-data']) ?? (await readMaybe(c['certificate-authority'], cluster.dir)),
    insecureSkipTlsVerify: c['insecure-skip-tls-verify'] === true,
    token: u.token,
    tokenFile: u.tokenFile ? (isAbsolute(u.tokenFile) ? u.tokenFile : join(udir, u.tokenFile)) : undefined,
    clientCert: decode(u['client-certificate-data']) ?? (await readMaybe(u['client-certificate'], udir)),
    clientKey: decode(u['client-key-data']) ?? (await readMaybe(u['client-key'], udir)),
    namespace: ctx.namespace,
    source: `${source} (context ${name})`,
  };
}

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The Pod's own ServiceAccount, when krun itself runs inside a cluster. */
export async function inClusterConnection(
  env: Readonly<Record<string, string | undefined>>,
  dir = IN_CLUSTER_DIR,
): Promise<KubeConnection | undefined> {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return undefined;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const hostPort = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const read = async (file: string) => readFile(join(dir, file), 'utf8').catch(() => undefined);
  return {
    server: `https://${hostPort}`,
    ca: await read('ca.crt'),
    tokenFile: join(dir, 'token'),
    namespace: (await read('namespace'))?.trim(),
    source: 'in-cluster service account',
  };
}
