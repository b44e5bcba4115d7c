// `krun setup-cluster --uninstall`: deletes what setup-cluster applies, looked up by its known names (istio-system and
// the gate's cluster-wide RBAC) and deleted only when labelled app.kubernetes.io/managed-by=krun: an object of the same
// name that someone else made is kept. Two objects are shared with others:
// - the Role krun-mesh-env-reader: setup-namespace's RoleBindings in istio-system grant it too; kept while any exists.
// - mesh-env: others (operators, Istio tooling) may add keys. The keys krun writes (setup-cluster's and the gate's)
//   are removed; the ConfigMap is deleted only when nothing else is left in it, else kept without krun's label.
import type { KrunContext } from '../context.ts';
import { type KubeClient, type KubeObject, objectPath } from '../kube/client.ts';
import { resourceName } from '../output/printer.ts';
import { runTasks } from '../ui/tasks.ts';
import { type Change, changeLine, type DryRun } from './apply.ts';
import { DEFAULT_GATE_IMAGE } from './cluster.ts';
import { clusterObjects, MESH_ENV_WRITTEN } from './cluster-objects.ts';
import { type KubeTarget, kubeClient } from './kube.ts';
import { GATE_PORT, ISTIO_SYSTEM, MANAGED_BY, MANAGED_BY_LABEL, MESH_ENV, MESH_ENV_READER } from './names.ts';

/** Every mesh-env key krun writes: setup-cluster's, and the managed-Istio tenant the gate adds. */
const KRUN_MESH_ENV_KEYS: readonly string[] = [...MESH_ENV_WRITTEN, 'MESH_TENANT'];

export interface UninstallClusterOptions extends KubeTarget {
  readonly dryRun: DryRun;
}

export interface UninstallClusterResult {
  /** The objects deleted (as they were), for `-o yaml|json|name`. */
  readonly objects: readonly KubeObject[];
  readonly changes: readonly Change[];
  /** False when nothing was (or, in a dry run, would be) deleted or changed. */
  readonly changed: boolean;
}

type Live = KubeObject & { data?: Record<string, string> };

const isKrun = (o: KubeObject) => o.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;

export async function uninstallCluster(
  options: UninstallClusterOptions,
  ctx: KrunContext,
  deps: { kube?: () => Promise<KubeClient> } = {},
): Promise<UninstallClusterResult> {
  // Deleted in the reverse of the order applied: mesh-env and the grants first, the gate's identity last.
  // Only the objects' kinds and names are used: the image, flags and keys they were applied with don't matter.
  const known = (await clusterObjects({ image: DEFAULT_GATE_IMAGE, gateArgs: [], gatePort: GATE_PORT, meshEnv: {} }))
    .slice()
    .reverse();
  const client = await (deps.kube ?? (() => kubeClient(options, ctx)))();
  const dryRun = options.dryRun;
  const deleted: KubeObject[] = [];
  const changes: Change[] = [];
  let changed = false;
  const record = (name: string, verb: string, didChange = false) => {
    changes.push({ name, verb });
    changed ||= didChange;
    return changeLine({ name, verb }, dryRun);
  };
  const dryRunQuery = dryRun === 'server' ? '?dryRun=All' : '';

  const remove = async (live: KubeObject, signal: AbortSignal): Promise<string> => {
    if (dryRun !== 'client') await client.delete(objectPath(live), { signal, dryRun: dryRun === 'server' });
    deleted.push(live);
    return record(resourceName(live), 'deleted', true);
  };

  const removeMeshEnv = async (live: Live, signal: AbortSignal): Promise<string> => {
    const others = Object.keys(live.data ?? {}).filter((k) => !KRUN_MESH_ENV_KEYS.includes(k));
    if (others.length === 0) return remove(live, signal);
    // Others' keys stay: only krun's keys and label go. The resourceVersion makes it fail rather than race a writer.
    const patch = {
      metadata: { resourceVersion: live.metadata.resourceVersion, labels: { [MANAGED_BY_LABEL]: null } },
      data: Object.fromEntries(KRUN_MESH_ENV_KEYS.map((k) => [k, null])),
    };
    if (dryRun !== 'client') {
      await client.request('PATCH', `${objectPath(live)}${dryRunQuery}`, patch, {
        signal,
        contentType: 'application/merge-patch+json',
      });
    }
    return record(
      resourceName(live),
      `updated (krun's keys removed; kept for the keys of others: ${others.join(', ')})`,
      true,
    );
  };

  /** setup-namespace's RoleBindings that grant the shared reader Role (not setup-cluster's own). */
  const readerUsers = async (signal: AbortSignal): Promise<string[]> => {
    const bindings = await client.list<KubeObject & { roleRef?: { kind?: string; name?: string } }>(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ISTIO_SYSTEM}/rolebindings`,
      `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
      { signal },
    );
    const own = new Set(known.filter((o) => o.kind === 'RoleBinding').map((o) => o.metadata.name));
    return bindings
      .filter((b) => b.roleRef?.kind === 'Role' && b.roleRef.name === MESH_ENV_READER && !own.has(b.metadata.name))
      .map((b) => b.metadata.name);
  };

  try {
    await runTasks(
      known.map((object) => ({
        title: `Deleting ${resourceName(object)}`,
        run: async (signal: AbortSignal) => {
          const name = resourceName(object);
          const live = await client.find<Live>(objectPath(object), { signal });
          if (!live) return record(name, 'not found');
          if (!isKrun(live)) return record(name, `kept (not labelled ${MANAGED_BY_LABEL}=${MANAGED_BY})`);
          if (object.kind === 'ConfigMap' && object.metadata.name === MESH_ENV) return removeMeshEnv(live, signal);
          if (object.kind === 'Role' && object.metadata.name === MESH_ENV_READER) {
            const users = await readerUsers(signal);
            if (users.length > 0)
              return record(name, `kept (setup-namespace's RoleBindings use it: ${users.join(', ')})`);
          }
          return remove(live, signal);
        },
      })),
      ctx,
    );
  } finally {
    client.close();
  }
  if (!changed) ctx.log.info('nothing to delete');
  return { objects: deleted, changes, changed };
}
