// Reading the cluster for the runtime commands: which runtime, and which Nodes (optionally by label selector).
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import { type KubeTarget, kubeClient } from '../setup/kube.ts';
import { findRuntime, RUNTIMES, type RuntimeDefinition } from './definitions.ts';
import type { NodeInfo } from './plan.ts';

export interface RuntimeTarget extends KubeTarget {
  readonly runtime: string;
  /** A label selector limiting the nodes (`-l pool=sandbox`). */
  readonly selector?: string | undefined;
}

/** Seams for tests: the cluster client. */
export interface RuntimeDeps {
  readonly kube?: () => Promise<KubeClient>;
}

export function runtimeDefinition(name: string): RuntimeDefinition {
  const def = findRuntime(name);
  if (!def) {
    throw new UsageError(`unknown runtime "${name}"`, {
      hints: RUNTIMES.map((r) => `krun runtime plan ${r.name}    # ${r.description}`),
    });
  }
  return def;
}

export function connect(target: KubeTarget, ctx: KrunContext, deps: RuntimeDeps): Promise<KubeClient> {
  return (deps.kube ?? (() => kubeClient(target, ctx)))();
}

export async function listNodes(client: KubeClient, selector: string | undefined, signal?: AbortSignal) {
  const query = selector ? `?labelSelector=${encodeURIComponent(selector)}` : '';
  const list = await client.get<{ items: NodeInfo[] }>(`/api/v1/nodes${query}`, signal ? { signal } : {});
  return list.items;
}
