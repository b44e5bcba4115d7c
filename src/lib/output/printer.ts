// kubectl's `-o json|yaml|name` for any command that returns objects. Several objects print as one v1 List, so
// `krun … -o json | kubectl apply -f -` and `| jq` work unchanged.
import { UsageError } from '../errors.ts';

export const OUTPUT_FORMATS = ['json', 'yaml', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

interface Named {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly name?: string };
}

/** `serviceaccount/default`, `customresourcedefinition.apiextensions.k8s.io/x`: kubectl's `-o name`. */
export function resourceName(object: Named): string {
  const kind = object.kind?.toLowerCase();
  const name = object.metadata?.name;
  if (!kind || !name)
    throw new UsageError('-o name needs objects with a kind and metadata.name', { hints: ['-o json'] });
  const slash = object.apiVersion?.indexOf('/') ?? -1;
  const group = slash > 0 ? object.apiVersion?.slice(0, slash) : undefined;
  return group ? `${kind}.${group}/${name}` : `${kind}/${name}`;
}

export async function formatObjects(objects: readonly unknown[], format: OutputFormat): Promise<string> {
  if (format === 'name') return objects.map((o) => `${resourceName(o as Named)}\n`).join('');
  const value = objects.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects };
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  // Loaded on demand: most runs never print YAML.
  const { stringify } = await import('yaml');
  return stringify(value, { lineWidth: 0 });
}
