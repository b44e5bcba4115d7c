// The least privilege `krun fn run` and the `docker` shim need in the namespace where functions run: each verb
// below is one call krun makes, nothing more (no list, no patch, no Secrets).
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import type { KubeObject } from '../kube/client.ts';
import { applyObject, type Change } from '../setup/apply.ts';
import { type KubeTarget, kubeClient } from '../setup/kube.ts';

export const FN_RULES = [
  // create the Pod, read and watch it to its end, delete it
  { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'watch', 'delete'] },
  // the WebSocket attach is a GET; since Kubernetes 1.35 it also needs create
  { apiGroups: [''], resources: ['pods/attach'], verbs: ['get', 'create'] },
  // what the function wrote before krun attached, and its log when it ended early
  { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
  // --mount: one ConfigMap per bind mount
  { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'delete'] },
  // --network none: a deny-all policy per run
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['create', 'delete'] },
] as const;

export interface FnRbacOptions extends KubeTarget {
  readonly namespace: string;
  /** `NAMESPACE:NAME` or `NAME` (in `namespace`), as kubectl's --serviceaccount. */
  readonly serviceAccount: string;
  /** Name of the Role and RoleBinding. */
  readonly name: string;
}

export function fnRbacObjects(o: Pick<FnRbacOptions, 'namespace' | 'serviceAccount' | 'name'>): KubeObject[] {
  const parts = o.serviceAccount.split(':');
  const [saNamespace, saName] = parts.length === 1 ? [o.namespace, o.serviceAccount] : parts;
  if (!saNamespace || !saName || parts.length > 2) {
    throw new UsageError(`--service-account ${o.serviceAccount}: expected NAMESPACE:NAME or NAME`, {
      hints: ['--service-account argocd:argocd-repo-server'],
    });
  }
  // One object each: shared, YAML output would print them as an anchor and an alias.
  const metadata = () => ({ name: o.name, namespace: o.namespace, labels: { 'app.kubernetes.io/managed-by': 'krun' } });
  return [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: metadata(), rules: FN_RULES },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: metadata(),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: o.name },
      subjects: [{ kind: 'ServiceAccount', name: saName, namespace: saNamespace }],
    },
  ];
}

/** Applies the Role and RoleBinding (server-side apply), saying per object created / updated / unchanged. */
export async function applyFnRbac(o: FnRbacOptions, ctx: KrunContext, dryRun: 'none' | 'server'): Promise<Change[]> {
  const objects = fnRbacObjects(o);
  const client = await kubeClient(o, ctx);
  try {
    const changes: Change[] = [];
    for (const object of objects) changes.push(await applyObject(client, object, { dryRun, signal: ctx.signal }));
    return changes;
  } finally {
    client.close();
  }
}
