// `krun runtime install`: the CLI is the dispatcher. It plans per node from outside, applies the RuntimeClass, the
// installer script's ConfigMap and one installer Job per supported, not yet labelled node (or, with --daemonset, one
// DaemonSet per install profile, its nodes labelled with the profile), and labels each node whose installer has
// succeeded. Re-running it is how progress is collected: unchanged objects stay unchanged, finished nodes get their
// label; --wait does the re-running itself until every installer finished or the timeout. A client dry run sends
// nothing; a server dry run has the API server validate everything.
import type { KrunContext } from '../context.ts';
import { KrunError } from '../errors.ts';
import { type KubeClient, type KubeObject, objectPath } from '../kube/client.ts';
import { resourceName } from '../output/printer.ts';
import { applyObject, type Change, changeLine, type DryRun } from '../setup/apply.ts';
import { runTasks, type Task } from '../ui/tasks.ts';
import { connect, listNodes, type RuntimeDeps, type RuntimeTarget, runtimeDefinition } from './cluster.ts';
import type { RuntimeDefinition } from './definitions.ts';
import { installerScript } from './installer.ts';
import {
  DEFAULT_NAMESPACE,
  installerDaemonSet,
  installerJob,
  type JobState,
  jobName,
  PROFILE_POD_LABEL,
  profileLabel,
  profileOf,
  runtimeClass,
  scriptConfigMap,
} from './objects.ts';
import { type NodePlan, planNodes, type RuntimePlan } from './plan.ts';
import {
  type Deadline,
  daemonPodResult,
  type InstallerResult,
  installerResults,
  jobResult,
  patchNodeLabels,
  settle,
} from './progress.ts';

export interface InstallOptions extends RuntimeTarget {
  readonly namespace?: string | undefined;
  readonly dryRun: DryRun;
  /** One DaemonSet per install profile (init container + pause) instead of one Job per node. */
  readonly daemonset?: boolean | undefined;
  /** Wait up to this many milliseconds for the installers, labelling nodes as they finish; undefined: don't wait. */
  readonly waitMs?: number | undefined;
}

export interface InstallResult {
  readonly plan: RuntimePlan;
  readonly objects: readonly KubeObject[];
  readonly changes: readonly Change[];
  readonly dryRun: DryRun;
  /** Why the command fails after printing its changes: an installer failed, or --wait timed out. */
  readonly failure?: unknown;
}

/** A node's installer as the label check sees it. */
interface NodeCheck {
  readonly settled: boolean;
  readonly change: Change;
  readonly failed?: { readonly node: string; readonly result: InstallerResult };
}

/** The deadline of `--wait`, from now. */
export function deadlineIn(ctx: KrunContext, waitMs: number | undefined): Deadline | undefined {
  return waitMs === undefined ? undefined : { at: ctx.clock.now().getTime() + waitMs, timeoutMs: waitMs };
}

/** `kubectl -n kube-system logs job/x`: where an installer's output is. */
export function logsCommand(namespace: string, result: Pick<InstallerResult, 'object'>): string {
  return `kubectl -n ${namespace} logs ${result.object}${result.object.startsWith('pod/') ? ' -c installer' : ''}`;
}

export async function runtimeInstall(
  options: InstallOptions,
  ctx: KrunContext,
  deps: RuntimeDeps = {},
): Promise<InstallResult> {
  const def = runtimeDefinition(options.runtime);
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const client = await connect(options, ctx, deps);
  try {
    const nodes = await listNodes(client, options.selector, ctx.signal);
    const labels = new Map(nodes.map((n) => [n.metadata.name, n.metadata.labels ?? {}]));
    const plan = planNodes(nodes, def);
    const supported = plan.nodes.filter((n) => n.method);
    const pending = supported.filter((n) => !n.labelled);
    const daemonSets = new Map<string, KubeObject>();
    if (options.daemonset) {
      for (const node of supported) daemonSets.set(profileOf(def, node), installerDaemonSet(def, node, namespace));
    }
    const objects: KubeObject[] = [
      runtimeClass(def),
      scriptConfigMap(namespace, await installerScript()),
      ...(options.daemonset ? daemonSets.values() : pending.map((n) => installerJob(def, n, namespace, 'install'))),
    ];
    const changes: Change[] = [];
    const record = (change: Change) => {
      changes.push(change);
      return changeLine(change, options.dryRun);
    };
    const tasks: Task[] = [];
    // A node has one installer Job at a time: the revert Job a past uninstall left goes before installing again, so
    // the next uninstall can't mistake it for its own.
    const previous =
      options.dryRun === 'client'
        ? new Map<string, InstallerResult[]>()
        : await installerResults(client, def, namespace, ctx.signal);
    for (const node of pending) {
      const revert = jobName(def, 'revert', node.node);
      if (!previous.get(node.node)?.some((r) => r.object === `job/${revert}`)) continue;
      const job = installerJob(def, node, namespace, 'revert');
      tasks.push({
        title: `Deleting ${resourceName(job)}`,
        run: async (signal) => {
          await client.delete(`${objectPath(job)}?propagationPolicy=Background`, {
            signal,
            dryRun: options.dryRun === 'server',
          });
          return record({ name: resourceName(job), verb: 'deleted' });
        },
      });
    }
    for (const object of objects) {
      tasks.push({
        title: `Applying ${resourceName(object)}`,
        run: async (signal) =>
          record(
            options.dryRun === 'client'
              ? { name: resourceName(object), verb: 'configured' }
              : await applyObject(client, object, { dryRun: options.dryRun, signal }),
          ),
      });
    }
    const deadline = deadlineIn(ctx, options.waitMs);
    const failures: { node: string; result: InstallerResult }[] = [];
    for (const node of plan.nodes) {
      const name = `node/${node.node}`;
      if (!node.method) {
        const verb = `skipped (${node.reason})`;
        tasks.push({ title: `Checking node ${node.node}`, run: async () => record({ name, verb }) });
        continue;
      }
      const profile = options.daemonset ? profileOf(def, node) : undefined;
      if (profile && options.dryRun === 'none' && labels.get(node.node)?.[profileLabel(def)] !== profile) {
        tasks.push({
          title: `Labelling node ${node.node} for its DaemonSet`,
          run: async (signal) => {
            await patchNodeLabels(client, node.node, { [profileLabel(def)]: profile }, signal);
            return record({ name, verb: `labelled ${profileLabel(def)}=${profile}` });
          },
        });
      }
      if (node.labelled) {
        tasks.push({
          title: `Checking node ${node.node}`,
          run: async () => record({ name, verb: 'unchanged (installed)' }),
        });
      } else if (options.dryRun === 'none') {
        const source = profile
          ? `daemonset/${daemonSets.get(profile)?.metadata.name}`
          : `job/${jobName(def, 'install', node.node)}`;
        tasks.push({
          title: deadline
            ? `Waiting for the installer on node ${node.node}`
            : `Checking the installer on node ${node.node}`,
          run: async (signal) => {
            const check = await settle(
              () => labelIfInstalled(client, def, node, namespace, profile, signal),
              deadline,
              {
                waitingFor: `${source} on node ${node.node}`,
                hints: [
                  `krun runtime status ${def.name}${options.selector ? ` -l '${options.selector}'` : ''}    # every node's installer`,
                  `kubectl -n ${namespace} describe ${profile ? `pods -l ${PROFILE_POD_LABEL}=${profile}` : source}`,
                  `krun runtime install ${def.name} --wait --timeout 10m    # wait longer`,
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
    }
    let failure: unknown;
    try {
      await runTasks(tasks, ctx);
    } catch (err) {
      failure = err;
    }
    if (!failure && failures.length > 0) failure = installerFailed(def, namespace, failures);
    return { plan, objects, changes, dryRun: options.dryRun, ...(failure ? { failure } : {}) };
  } finally {
    client.close();
  }
}

/** The error for nodes whose installer gave up. */
export function installerFailed(
  def: RuntimeDefinition,
  namespace: string,
  failures: readonly { node: string; result: InstallerResult }[],
): KrunError {
  const action = failures[0]?.result.action ?? 'install';
  return new KrunError(
    `the ${def.name} ${action === 'revert' ? 'revert' : 'installer'} failed on node ${failures.map((f) => f.node).join(', ')}`,
    {
      hints: failures.flatMap((f) => [
        `${logsCommand(namespace, f.result)}    # what it said`,
        ...(f.result.object.startsWith('job/')
          ? [
              `kubectl -n ${namespace} delete ${f.result.object}    # then run krun runtime ${action === 'revert' ? 'uninstall' : 'install'} ${def.name} again`,
            ]
          : []),
      ]),
    },
  );
}

/** Labels the node when its installer (Job or DaemonSet pod) has succeeded; otherwise says what it's waiting for. */
async function labelIfInstalled(
  client: KubeClient,
  def: RuntimeDefinition,
  node: NodePlan,
  namespace: string,
  profile: string | undefined,
  signal: AbortSignal,
): Promise<NodeCheck> {
  const name = `node/${node.node}`;
  let result: InstallerResult | undefined;
  let waitingFor: string;
  if (profile) {
    result = await daemonPodResult(client, def, namespace, profile, node.node, signal);
    waitingFor = `the pod of daemonset/krun-${def.name}-${profile}`;
  } else {
    const job = installerJob(def, node, namespace, 'install');
    const live = await client.find<JobState & { metadata: { name: string } }>(objectPath(job), { signal });
    result = live && jobResult(live);
    waitingFor = `job/${job.metadata.name}`;
  }
  if (result?.phase === 'succeeded') {
    await patchNodeLabels(client, node.node, { [def.nodeLabel.key]: def.nodeLabel.value }, signal);
    return { settled: true, change: { name, verb: 'labelled' } };
  }
  if (result?.phase === 'failed') {
    return {
      settled: true,
      change: { name, verb: `failed: ${result.object} ${result.message}` },
      failed: { node: node.node, result },
    };
  }
  return {
    settled: false,
    change: { name, verb: `waiting for ${waitingFor}${result?.message ? ` (${result.message})` : ''}` },
  };
}
