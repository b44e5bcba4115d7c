// Writes a kubeconfig for the test apiserver. JSON is valid YAML, and every kubeconfig loader (client-go,
// kubectl, @kubernetes/client-node) reads it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeAccess, TestKube } from './kube.ts';

export function kubeconfigFor(access: KubeAccess, namespace?: string, token = access.token): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'krun-test',
          cluster: { server: access.server, 'certificate-authority-data': Buffer.from(access.ca).toString('base64') },
        },
      ],
      users: [{ name: 'krun-test', user: { token } }],
      contexts: [
        {
          name: 'krun-test',
          context: { cluster: 'krun-test', user: 'krun-test', ...(namespace ? { namespace } : {}) },
        },
      ],
      'current-context': 'krun-test',
    },
    null,
    2,
  );
}

/** Kubeconfigs hold credentials: written with mode 0600. */
export function writeKubeconfig(path: string, access: KubeAccess, namespace?: string, token?: string): string {
  writeFileSync(path, kubeconfigFor(access, namespace, token), { mode: 0o600 });
  return path;
}

/** What `krun run` reads besides its own token: the Pod's config maps and secrets (or just the mesh root). */
export type LauncherReads = 'configmaps-and-secrets' | 'istio-root';

/**
 * A namespace with a ServiceAccount `app`, and a kubeconfig (written in `dir`) for a `launcher` identity holding just
 * the RBAC `krun run` needs: tokens for `app`, and the reads it makes.
 */
export async function launcherWorkload(
  kube: TestKube,
  dir: string,
  prefix: string,
  reads: LauncherReads = 'configmaps-and-secrets',
): Promise<{ ns: string; kubeconfig: string }> {
  const ns = await kube.createNamespace(prefix);
  await kube.createServiceAccount(ns, 'app');
  await kube.createServiceAccount(ns, 'launcher');
  await kube.grant(
    ns,
    'krun-launcher',
    [
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['app'], verbs: ['create'] },
      reads === 'istio-root'
        ? { apiGroups: [''], resources: ['configmaps'], resourceNames: ['istio-ca-root-cert'], verbs: ['get'] }
        : { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get'] },
    ],
    [{ kind: 'ServiceAccount', name: 'launcher', namespace: ns }],
  );
  const { token } = await kube.requestToken(ns, 'launcher', [], 3600);
  return { ns, kubeconfig: writeKubeconfig(join(dir, `${ns}.kubeconfig`), kube.access, ns, token) };
}
