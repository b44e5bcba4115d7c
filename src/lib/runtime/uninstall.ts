// `krun runtime uninstall`: the reverse of install, with the CLI again the dispatcher. For every selected node krun
// touched (labelled, in a DaemonSet's reach, or with an installer Job), it takes the node out of the DaemonSets'
// reach, deletes the install Job, and applies a revert Job that restores the container runtime's configuration from
// the installer's backup. Once a node's revert Job succeeded, krun removes the node's label. DaemonSets no node
// uses any more and, once no node carries the runtime's label, the RuntimeClass are deleted. Re-running it collects
// progress; --wait does that itself. Revert Jobs stay, as the record `krun runtime status` shows.
import type { KrunContext } from '../context.ts';
import { type KubeClient, type KubeObject, objectPath } from '../kube/client.ts';
import { resourceName } from '../output/printer.ts';
import { applyObject, type Change, changeLine, type DryRun } from '../setup/apply.ts';
import { runTasks, type Task } from '../ui/tasks.ts';
import { connect, listNodes, type RuntimeDeps, type RuntimeTarget, runtimeDefinition } from './cluster.ts';
import type { RuntimeDefinition } from './definitions.ts';
import { deadlineIn, installerFailed } from './install.ts';
import { installerScript } from './installer.ts';
import {
  DEFAULT_NAMESPACE,
  installerJob,
  type JobState,
  PROFILE_POD_LABEL,
  profileLabel,
  runtimeClass,
  scriptConfigMap,
} from './objects.ts';
import { type NodePlan, planNodes } from './plan.ts';
import { type InstallerResult, installerResults, jobResult, patchNodeLabels, settle } from './progress.ts';

export interface UninstallOptions extends RuntimeTarget {
  readonly namespace?: string | undefined;
  readonly dryRun: DryRun;
  /** Wait up to this many milliseconds for the revert Jobs, then finish; undefined: don't wait. */
  readonly waitMs?: number | undefined;
}

export interface UninstallResult {
  readonly changes: readonly Change[];
  readonly dryRun: DryRun;
  /** Why the command fails after printing its changes: a revert failed, or --wait timed out. */
  readonly failure?: unknown;
}

interface DaemonSetInfo {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string; readonly labels?: Record<string, string> };
}

export async function runtimeUninstall(
  options: UninstallOptions,
  ctx: KrunContext,
  deps: RuntimeDeps = {},
): Promise<UninstallResult> {
  const def = runtimeDefinition(options.runtime);
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const client = await connect(options, ctx, deps);
  const write = options.dryRun !== 'client';
  const serverDryRun = options.dryRun === 'server';
  try {
    const nodes = await listNodes(client, options.selector, ctx.signal);
    const labels = new Map(nodes.map((n) => [n.metadata.name, n.metadata.labels ?? {}]));
    const plan = planNodes(nodes, def);
    const previous = await installerResults(client, def, namespace, ctx.signal);
    const changes: Change[] = [];
    const record = (change: Change) => {
      changes.push(change);
      return changeLine(change, options.dryRun);
    };
    const touched = plan.nodes.filter(
      (n) =>
        n.method && (n.labelled || labels.get(n.node)?.[profileLabel(def)] || (previous.get(n.node) ?? []).length > 0),
    );
    const tasks: Task[] = [];
    if (touched.length > 0) {
      const script = scriptConfigMap(namespace, await installerScript());
      tasks.push(applyTask(client, script, options.dryRun, record));
    }
    const deadline = deadlineIn(ctx, options.waitMs);
    const failures: { node: string; result: InstallerResult }[] = [];
    for (const node of plan.nodes) {
      const name = `node/${node.node}`;
      if (!node.method) {
        tasks.push({
          title: `Checking node ${node.node}`,
          run: async () => record({ name, verb: `skipped (${node.reason})` }),
        });
        continue;
      }
      if (!touched.includes(node)) {
        tasks.push({
          title: `Checking node ${node.node}`,
          run: async () => record({ name, verb: 'unchanged (not installed)' }),
        });
        continue;
      }
      if (labels.get(node.node)?.[profileLabel(def)] !== undefined) {
        tasks.push({
          title: `Taking node ${node.node} out of the DaemonSets' reach`,
          run: async (signal) => {
            if (write) await patchNodeLabels(client, node.node, { [profileLabel(def)]: null }, signal, serverDryRun);
            return record({ name, verb: `unlabelled ${profileLabel(def)}` });
          },
        });
      }
      const install = installerJob(def, node, namespace, 'install');
      if (previous.get(node.node)?.some((r) => r.object === `job/${install.metadata.name}`)) {
        tasks.push(deleteTask(client, install, options.dryRun, record));
      }
      const revert = installerJob(def, node, namespace, 'revert');
      tasks.push(applyTask(client, revert, options.dryRun, record));
      if (options.dryRun !== 'none') continue;
      tasks.push({
        title: deadline ? `Waiting for the revert on node ${node.node}` : `Checking the revert on node ${node.node}`,
        run: async (signal) => {
          const check = await settle(
            () => unlabelIfReverted(client, def, node, revert, signal),
            deadline,
            {
              waitingFor: `job/${revert.metadata.name} on node ${node.node}`,
              hints: [
                `krun runtime status ${def.name}${options.selector ? ` -l '${options.selector}'` : ''}    # every node's installer`,
                `kubectl -n ${namespace} describe job/${revert.metadata.name}`,
                `krun runtime uninstall ${def.name} --wait --timeout 10m    # wait longer`,
              ],
            },
            ctx,
            signal,
          );
          if (check.failed) failures.push(check.failed);
          return record(check.change);
        },
      });
    }
    tasks.push({
      title: `Deleting the ${def.name} DaemonSets no node uses`,
      run: async (signal) => {
        const lines: string[] = [];
        for (const ds of await daemonSets(client, def, namespace, signal)) {
          const profile = ds.metadata.labels?.[PROFILE_POD_LABEL] ?? '';
          const users = (await listNodes(client, `${profileLabel(def)}=${profile}`, signal)).length;
          if (users > 0)
            lines.push(record({ name: resourceName(ds), verb: `kept (${nodeCount(users)} still use it)` }));
          else lines.push(await deleteTask(client, ds, options.dryRun, record).run(signal));
        }
        return lines.join('\n') || `no ${def.name} DaemonSets`;
      },
    });
    const rc = runtimeClass(def);
    tasks.push({
      title: `Deleting ${resourceName(rc)} once no node carries ${def.nodeLabel.key}`,
      run: async (signal) => {
        const selector = `${def.nodeLabel.key}=${def.nodeLabel.value}`;
        const users = (await listNodes(client, selector, signal)).length;
        if (users > 0) return record({ name: resourceName(rc), verb: `kept (${nodeCount(users)} still labelled)` });
        return deleteTask(client, rc, options.dryRun, record).run(signal);
      },
    });
    let failure: unknown;
    try {
      await runTasks(tasks, ctx);
    } catch (err) {
      failure = err;
    }
    if (!failure && failures.length > 0) failure = installerFailed(def, namespace, failures);
    return { changes, dryRun: options.dryRun, ...(failure ? { failure } : {}) };
  } finally {
    client.close();
  }
}

function nodeCount(n: number): string {
  return `${n} node${n === 1 ? '' : 's'}`;
}

function applyTask(client: KubeClient, object: KubeObject, dryRun: DryRun, record: (c: Change) => string): Task {
  return {
    title: `Applying ${resourceName(object)}`,
    run: async (signal) =>
      record(
        dryRun === 'client'
          ? { name: resourceName(object), verb: 'configured' }
          : await applyObject(client, object, { dryRun, signal }),
      ),
  };
}

/** Deletes an object (its dependents in the background): `deleted`, or `unchanged (not found)`. */
function deleteTask(
  client: KubeClient,
  object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>,
  dryRun: DryRun,
  record: (c: Change) => string,
): Task {
  const name = resourceName(object);
  return {
    title: `Deleting ${name}`,
    run: async (signal) => {
      const path = objectPath(object);
      const existed =
        dryRun === 'client'
          ? (await client.find(path, { signal })) !== undefined
          : await client.delete(`${path}?propagationPolicy=Background`, { signal, dryRun: dryRun === 'server' });
      return record({ name, verb: existed ? 'deleted' : 'unchanged (not found)' });
    },
  };
}

async function daemonSets(
  client: KubeClient,
  def: RuntimeDefinition,
  namespace: string,
  signal: AbortSignal,
): Promise<DaemonSetInfo[]> {
  const selector = encodeURIComponent(`krun.dev/runtime=${def.name},${PROFILE_POD_LABEL}`);
  const list = await client.get<{ items: Omit<DaemonSetInfo, 'apiVersion' | 'kind'>[] }>(
    `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets?labelSelector=${selector}`,
    { signal },
  );
  return list.items.map((ds) => ({ apiVersion: 'apps/v1', kind: 'DaemonSet', ...ds }));
}

/** Removes the node's label once its revert Job has succeeded; otherwise says what it's waiting for. */
async function unlabelIfReverted(
  client: KubeClient,
  def: RuntimeDefinition,
  node: NodePlan,
  revert: KubeObject,
  signal: AbortSignal,
): Promise<{ settled: boolean; change: Change; failed?: { node: string; result: InstallerResult } }> {
  const name = `node/${node.node}`;
  const live = await client.find<JobState & { metadata: { name: string } }>(objectPath(revert), { signal });
  const result = live && jobResult(live);
  if (result?.phase === 'succeeded') {
    if (!node.labelled) return { settled: true, change: { name, verb: 'unchanged (reverted)' } };
    await patchNodeLabels(client, node.node, { [def.nodeLabel.key]: null }, signal);
    return { settled: true, change: { name, verb: 'unlabelled' } };
  }
  if (result?.phase === 'failed') {
    return {
      settled: true,
      change: { name, verb: `failed: ${result.object} ${result.message}` },
      failed: { node: node.node, result },
    };
  }
  const object = `job/${revert.metadata.name}`;
  return {
    settled: false,
    change: { name, verb: `waiting for ${object}${result?.message ? ` (${result.message})` : ''}` },
  };
}
