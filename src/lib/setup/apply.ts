// The applier: sends the builders' objects with server-side apply and says what happened to each, the way
// `kubectl apply` does (created / updated / unchanged), comparing the live object before and after.
import { type KubeClient, type KubeObject, objectPath } from '../kube/client.ts';
import { resourceName } from '../output/printer.ts';

export type ApplyVerb = 'created' | 'updated' | 'unchanged' | 'configured';
export type DryRun = 'none' | 'client' | 'server';

export interface Change {
  /** `namespace/fortio`, `role.rbac.authorization.k8s.io/krun-launcher`, or a Google resource line. */
  readonly name: string;
  readonly verb: string;
}

/** What `krun … ` prints per change: `namespace/fortio created`, `… unchanged (server dry run)`. */
export function changeLine(change: Change, dryRun: DryRun): string {
  const suffix = dryRun === 'client' ? ' (dry run)' : dryRun === 'server' ? ' (server dry run)' : '';
  return `${change.name} ${change.verb}${suffix}`;
}

/** The whole report of a run: one changeLine per change, each ending in a newline. */
export function changeLines(changes: readonly Change[], dryRun: DryRun): string {
  return changes.map((c) => `${changeLine(c, dryRun)}\n`).join('');
}

/** The object without what the server changes on every write, for comparing two versions. */
function comparable(object: unknown): string {
  const { metadata, status: _status, ...rest } = object as { metadata?: Record<string, unknown>; status?: unknown };
  const { resourceVersion: _rv, managedFields: _mf, generation: _g, ...meta } = metadata ?? {};
  return JSON.stringify({ ...rest, metadata: meta });
}

export async function applyObject(
  client: KubeClient,
  object: KubeObject,
  options: { dryRun: 'none' | 'server'; signal?: AbortSignal },
): Promise<Change> {
  const name = resourceName(object);
  const req = options.signal ? { signal: options.signal } : {};
  const live = await client.find<KubeObject>(objectPath(object), req);
  const applied = await client.apply(object, { ...req, dryRun: options.dryRun === 'server' });
  if (!live) return { name, verb: 'created' };
  return { name, verb: comparable(live) === comparable(applied) ? 'unchanged' : 'updated' };
}
