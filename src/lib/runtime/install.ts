// `krun runtime install`: the CLI is the dispatcher. It plans per node from outside, applies the RuntimeClass, the
// installer script's ConfigMap and one installer Job per supported, not yet labelled node, and labels each node whose
// Job has succeeded. Re-running it is how progress is collected: unchanged objects stay unchanged, finished nodes get
// their label. A client dry run sends nothing; a server dry run has the API server validate everything.
import type { KrunContext } from '../context.ts';
import { type KubeClient, type KubeObject, objectPath } from '../kube/client.ts';
import { resourceName } from '../output/printer.ts';
import { applyObject, type Change, type DryRun } from '../setup/apply.ts';
import { runTasks, type Task } from '../ui/tasks.ts';
import { connect, listNodes, type RuntimeDeps, type RuntimeTarget, runtimeDefinition } from './cluster.ts';
import { installerScript } from './installer.ts';
import {
  DEFAULT_NAMESPACE,
  installerJob,
  type JobState,
  jobSucceeded,
  runtimeClass,
  scriptConfigMap,
} from './objects.ts';
import { planNodes, type RuntimePlan } from './plan.ts';

export interface InstallOptions extends RuntimeTarget {
  readonly namespace?: string | undefined;
  readonly dryRun: DryRun;
}

export interface InstallResult {
  readonly plan: RuntimePlan;
  readonly objects: readonly KubeObject[];
  readonly changes: readonly Change[];
  readonly dryRun: DryRun;
}

export async function runtimeInstall(options: InstallOptions, ctx: KrunContext, deps: RuntimeDeps = {}) {
  const def = runtimeDefinition(options.runtime);
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const client = await connect(options, ctx, deps);
  try {
    const plan = planNodes(await listNodes(client, options.selector, ctx.signal), def);
    const pending = plan.nodes.filter((n) => n.method && !n.labelled);
    const objects: KubeObject[] = [
      runtimeClass(def),
      scriptConfigMap(namespace, await installerScript()),
      ...pending.map((n) => installerJob(def, n, namespace, 'install')),
    ];
    const changes: Change[] = [];
    const suffix = options.dryRun === 'client' ? ' (dry run)' : options.dryRun === 'server' ? ' (server dry run)' : '';
    const record = (change: Change) => {
      changes.push(change);
      return `${change.name} ${change.verb}${suffix}`;
    };
    const tasks: Task[] = objects.map((object) => ({
      title: `Applying ${resourceName(object)}`,
      run: async (signal) =>
        record(
          options.dryRun === 'client'
            ? { name: resourceName(object), verb: 'configured' }
            : await applyObject(client, object, { dryRun: options.dryRun, signal }),
        ),
    }));
    for (const node of plan.nodes) {
      const name = `node/${node.node}`;
      if (!node.method) {
        const verb = `skipped (${node.reason})`;
        tasks.push({ title: `Checking node ${node.node}`, run: async () => record({ name, verb }) });
      } else if (node.labelled) {
        tasks.push({
          title: `Checking node ${node.node}`,
          run: async () => record({ name, verb: 'unchanged (installed)' }),
        });
      } else if (options.dryRun === 'none') {
        tasks.push({
          title: `Checking the installer on node ${node.node}`,
          run: async (signal) =>
            record(
              await labelIfInstalled(client, node.node, installerJob(def, node, namespace, 'install'), def, signal),
            ),
        });
      }
    }
    await runTasks(tasks, ctx);
    return { plan, objects, changes, dryRun: options.dryRun } satisfies InstallResult;
  } finally {
    client.close();
  }
}

/** Labels the node when its installer Job has succeeded; otherwise says what it's waiting for. */
async function labelIfInstalled(
  client: KubeClient,
  node: string,
  job: KubeObject,
  def: ReturnType<typeof runtimeDefinition>,
  signal: AbortSignal,
): Promise<Change> {
  const live = await client.find<JobState>(objectPath(job), { signal });
  if (live && jobSucceeded(live)) {
    await client.request(
      'PATCH',
      `/api/v1/nodes/${encodeURIComponent(node)}`,
      {
        metadata: { labels: { [def.nodeLabel.key]: def.nodeLabel.value } },
      },
      { signal, contentType: 'application/merge-patch+json' },
    );
    return { name: `node/${node}`, verb: 'labelled' };
  }
  const failed = live?.status?.failed ?? 0;
  return { name: `node/${node}`, verb: `waiting for job/${job.metadata.name}${failed ? ` (${failed} failed)` : ''}` };
}
