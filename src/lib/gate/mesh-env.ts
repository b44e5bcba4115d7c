// The gate keeps mesh-env current, not only at start-up as the original did: every interval it reads what it can
// know (the mesh roots, its load balancers' addresses, and on Google Cloud the project and cluster from the
// metadata server, and managed Istio's tenant) and sets the keys whose values changed (a root rotation, a new
// load-balancer address) with a merge patch. Keys it has no value for, and keys others wrote (PORT_*, XDS_ADDR, …),
// are never touched.
import type { Env } from '../context.ts';
import { detectPlatform } from '../gcp/platform.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../log/logger.ts';
import { readGateFacts } from '../setup/gate-address.ts';
import { ISTIO_SYSTEM, MANAGED_LABELS, MESH_ENV } from '../setup/names.ts';

/** The original's managed-Istio ConfigMap (its MCP_CONFIG default), next to mesh-env: CLOUDRUN_ADDR is the tenant. */
const MANAGED_MESH_CONFIG = 'env-asm-managed';

export interface MeshEnvOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly env: Env;
  /** Where mesh-env is: istio-system unless configured otherwise. */
  readonly namespace: string;
  readonly intervalMs: number;
  readonly signal: AbortSignal;
}

/** The keys this round would set: what the gate knows that differs from `current`. */
export function meshEnvChanges(
  current: Readonly<Record<string, string>>,
  known: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(known).filter((e): e is [string, string] => Boolean(e[1]) && current[e[0]] !== e[1]),
  );
}

/** The project and cluster from the metadata server; read once, they don't change. */
async function metadataFacts(env: Env, log: Logger): Promise<Record<string, string | undefined>> {
  if (!(await detectPlatform(env)).onGoogleCloud) return {};
  const metadata = await import('gcp-metadata');
  const read = (p: Promise<unknown>) => p.then((v) => (v === undefined ? undefined : String(v))).catch(() => undefined);
  const [project, number, cluster, location] = await Promise.all([
    read(metadata.project('project-id')),
    read(metadata.project('numeric-project-id')),
    read(metadata.instance('attributes/cluster-name')),
    read(metadata.instance('attributes/cluster-location')),
  ]);
  log.debug('metadata facts', { project, cluster, location });
  return { PROJECT_ID: project, PROJECT_NUMBER: number, CLUSTER_NAME: cluster, CLUSTER_LOCATION: location };
}

/** One round: reads the facts and mesh-env, and writes what changed. Returns the keys written. */
export async function reconcileMeshEnv(
  options: Omit<MeshEnvOptions, 'intervalMs'>,
  fromMetadata: Record<string, string | undefined>,
): Promise<string[]> {
  const { client, signal, namespace } = options;
  const roots = await client.find<{ data?: Record<string, string> }>(
    `/api/v1/namespaces/${ISTIO_SYSTEM}/configmaps/istio-ca-root-cert`,
    { signal },
  );
  const gate = await readGateFacts(client, signal);
  // Managed Istio (MCP) names the Cloud Run tenant here; workloads then use MCP instead of istiod through the gate.
  const managed = await client.find<{ data?: Record<string, string> }>(
    `/api/v1/namespaces/${namespace}/configmaps/${MANAGED_MESH_CONFIG}`,
    { signal },
  );
  const known = {
    ...fromMetadata,
    CAROOT_ISTIOD: roots?.data?.['root-cert.pem'],
    MCON_ADDR: gate.external,
    IMCON_ADDR: gate.internal,
    MESH_TENANT: managed?.data?.CLOUDRUN_ADDR,
  };
  const path = `/api/v1/namespaces/${namespace}/configmaps/${MESH_ENV}`;
  const current = await client.find<{ data?: Record<string, string> }>(path, { signal });
  const changes = meshEnvChanges(current?.data ?? {}, known);
  if (Object.keys(changes).length === 0) return [];
  if (current) {
    await client.request('PATCH', path, { data: changes }, { signal, contentType: 'application/merge-patch+json' });
  } else {
    await client.post(
      `/api/v1/namespaces/${namespace}/configmaps`,
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: MESH_ENV, namespace, labels: MANAGED_LABELS },
        data: changes,
      },
      { signal },
    );
  }
  return Object.keys(changes).sort();
}

/** Reconciles now and then every interval until the signal aborts; failures are logged and retried. */
export function keepMeshEnv(options: MeshEnvOptions): { readonly firstRound: Promise<void> } {
  const { log, signal } = options;
  let fromMetadata: Promise<Record<string, string | undefined>> | undefined;
  let running = false;
  const round = async () => {
    if (running) return;
    running = true;
    try {
      fromMetadata ??= metadataFacts(options.env, log);
      const written = await reconcileMeshEnv(options, await fromMetadata);
      if (written.length > 0) log.info('mesh-env updated', { namespace: options.namespace, keys: written });
    } catch (err) {
      if (!signal.aborted) log.warn('cannot reconcile mesh-env', { error: (err as Error).message });
    } finally {
      running = false;
    }
  };
  const firstRound = round();
  const timer = setInterval(() => void round(), options.intervalMs);
  timer.unref();
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  return { firstRound };
}
