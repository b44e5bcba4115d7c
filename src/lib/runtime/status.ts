// `krun runtime status`: read-only. Per node: whether the runtime is installed (the node label), how it is or would
// be installed, and its last installer (install or revert Job, or DaemonSet pod) with the result. Also the
// RuntimeClass and the DaemonSets. Needs `nodes: list`, `runtimeclasses: get`, and list on Jobs, pods and DaemonSets
// in the installers' namespace.
import type { KrunContext } from '../context.ts';
import { resourceName } from '../output/printer.ts';
import { connect, listNodes, type RuntimeDeps, type RuntimeTarget, runtimeDefinition } from './cluster.ts';
import type { RuntimeDefinition } from './definitions.ts';
import { logsCommand } from './install.ts';
import { DEFAULT_NAMESPACE, PROFILE_POD_LABEL, profileLabel, runtimeClass } from './objects.ts';
import { type InstallMethod, planNodes, table } from './plan.ts';
import { type InstallerResult, installerResults, lastResult } from './progress.ts';

export interface StatusOptions extends RuntimeTarget {
  readonly namespace?: string | undefined;
}

export interface NodeStatus {
  readonly node: string;
  /** installed, not installed, installing, install failed, … (see nodeState). */
  readonly state: string;
  readonly containerRuntimeVersion: string;
  readonly method?: InstallMethod;
  /** Why the node is unsupported. */
  readonly reason?: string;
  /** The node carries the runtime's label: the RuntimeClass's pods go there. */
  readonly labelled: boolean;
  /** The install profile label that puts the node in a DaemonSet's reach. */
  readonly profile?: string;
  /** kubelet reports the handler in status.runtimeHandlers. */
  readonly handlerReported: boolean;
  /** The node's last installer: an install or revert Job, or a DaemonSet pod. */
  readonly installer?: InstallerResult;
}

export interface RuntimeStatus {
  readonly apiVersion: 'krun.dev/v1alpha1';
  readonly kind: 'RuntimeStatus';
  readonly runtime: string;
  readonly handler: string;
  readonly namespace: string;
  readonly runtimeClass: { readonly name: string; readonly found: boolean; readonly handler?: string };
  readonly daemonSets: readonly {
    readonly name: string;
    readonly profile: string;
    readonly desired: number;
    readonly ready: number;
  }[];
  readonly nodes: readonly NodeStatus[];
}

interface DaemonSetState {
  readonly metadata: { readonly name: string; readonly labels?: Readonly<Record<string, string>> };
  readonly status?: { readonly desiredNumberScheduled?: number; readonly numberReady?: number };
}

export async function runtimeStatus(
  options: StatusOptions,
  ctx: KrunContext,
  deps: RuntimeDeps = {},
): Promise<RuntimeStatus> {
  const def = runtimeDefinition(options.runtime);
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const client = await connect(options, ctx, deps);
  const signal = ctx.signal;
  try {
    const ns = encodeURIComponent(namespace);
    const dsSelector = encodeURIComponent(`krun.dev/runtime=${def.name},${PROFILE_POD_LABEL}`);
    const [nodes, results, rc, daemonSets] = await Promise.all([
      listNodes(client, options.selector, signal),
      installerResults(client, def, namespace, signal),
      client.find<{ handler?: string }>(`/apis/node.k8s.io/v1/runtimeclasses/${encodeURIComponent(def.name)}`, {
        signal,
      }),
      client.get<{ items: DaemonSetState[] }>(`/apis/apps/v1/namespaces/${ns}/daemonsets?labelSelector=${dsSelector}`, {
        signal,
      }),
    ]);
    const profiles = new Map(nodes.map((n) => [n.metadata.name, n.metadata.labels?.[profileLabel(def)]]));
    const plan = planNodes(nodes, def);
    return {
      apiVersion: 'krun.dev/v1alpha1',
      kind: 'RuntimeStatus',
      runtime: def.name,
      handler: def.handler,
      namespace,
      runtimeClass: { name: def.name, found: rc !== undefined, ...(rc?.handler ? { handler: rc.handler } : {}) },
      daemonSets: daemonSets.items.map((ds) => ({
        name: ds.metadata.name,
        profile: ds.metadata.labels?.[PROFILE_POD_LABEL] ?? '',
        desired: ds.status?.desiredNumberScheduled ?? 0,
        ready: ds.status?.numberReady ?? 0,
      })),
      nodes: plan.nodes.map((n) => {
        const installer = lastResult(results.get(n.node));
        const profile = profiles.get(n.node);
        return {
          node: n.node,
          state: nodeState(def, namespace, n.method, n.reason, n.labelled, installer),
          containerRuntimeVersion: n.containerRuntimeVersion,
          ...(n.method ? { method: n.method } : { reason: n.reason }),
          labelled: n.labelled,
          ...(profile ? { profile } : {}),
          handlerReported: n.handlerReported,
          ...(installer ? { installer } : {}),
        };
      }),
    };
  } finally {
    client.close();
  }
}

/** The node's state in words, with what to do next when something is left to do. */
export function nodeState(
  def: RuntimeDefinition,
  namespace: string,
  method: InstallMethod | undefined,
  reason: string | undefined,
  labelled: boolean,
  last: InstallerResult | undefined,
): string {
  if (!method) return `unsupported: ${reason}`;
  const failed = (what: string, r: InstallerResult) => `${what} failed: ${r.message} (${logsCommand(namespace, r)})`;
  if (last?.action === 'revert') {
    if (last.phase === 'running') return 'reverting';
    if (last.phase === 'failed') return failed('revert', last);
    return labelled ? `reverted, still labelled: run krun runtime uninstall ${def.name}` : 'not installed (reverted)';
  }
  if (labelled) return 'installed';
  if (!last) return 'not installed';
  if (last.phase === 'running') return `installing${last.message ? ` (${last.message})` : ''}`;
  if (last.phase === 'failed') return failed('install', last);
  return `installed, not labelled yet: run krun runtime install ${def.name}`;
}

function result(r: InstallerResult | undefined): string {
  return r ? `${r.action} ${r.phase}` : '<none>';
}

/** The human status: the RuntimeClass, the DaemonSets, then one row per node. */
export function formatStatus(status: RuntimeStatus): string {
  const def = runtimeDefinition(status.runtime);
  const rc = resourceName(runtimeClass(def));
  const selector = `${def.nodeLabel.key}=${def.nodeLabel.value}`;
  const lines = [
    status.runtimeClass.found
      ? `${rc}: handler ${status.runtimeClass.handler ?? '<none>'}, for nodes labelled ${selector}\n`
      : `${rc}: not found\n`,
    ...status.daemonSets.map(
      (ds) =>
        `daemonset.apps/${ds.name}: ${ds.ready} of ${ds.desired} ready (nodes labelled ${profileLabel(def)}=${ds.profile})\n`,
    ),
  ];
  if (status.nodes.length === 0) return `${lines.join('')}No nodes match.\n`;
  return (
    lines.join('') +
    table([
      ['NODE', 'RUNTIME', 'METHOD', 'LABELLED', 'LAST INSTALLER', 'STATUS'],
      ...status.nodes.map((n) => [
        n.node,
        n.containerRuntimeVersion || '<none>',
        n.method ?? '<none>',
        n.labelled ? 'yes' : 'no',
        result(n.installer),
        n.state,
      ]),
    ])
  );
}
