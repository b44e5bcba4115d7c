// The read-only `krun runtime plan` service: list the nodes, decide per node. Needs only `nodes: list`.
import type { KrunContext } from '../context.ts';
import { connect, listNodes, type RuntimeDeps, type RuntimeTarget, runtimeDefinition } from './cluster.ts';
import { planNodes, type RuntimePlan } from './plan.ts';

export async function runtimePlan(
  target: RuntimeTarget,
  ctx: KrunContext,
  deps: RuntimeDeps = {},
): Promise<RuntimePlan> {
  const def = runtimeDefinition(target.runtime);
  const client = await connect(target, ctx, deps);
  try {
    return planNodes(await listNodes(client, target.selector, ctx.signal), def);
  } finally {
    client.close();
  }
}
