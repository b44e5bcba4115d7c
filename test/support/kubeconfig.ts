// Writes a kubeconfig for the test apiserver. JSON is valid YAML, and every kubeconfig loader (client-go,
// kubectl, @kubernetes/client-node) reads it.
import { writeFileSync } from 'node:fs';
import type { KubeAccess } from './kube.ts';

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
