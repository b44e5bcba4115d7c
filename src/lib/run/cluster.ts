// Which cluster `krun run` talks to: an explicit KUBECONFIG (or --kubeconfig), else ~/.kube/config, else the
// in-cluster ServiceAccount. Nothing configured at all means standalone mode; something configured but broken
// is an error, never a silent fallback.
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.ts';
import { inClusterConnection, type KubeConnection, kubeconfigPaths, loadKubeconfig } from '../kube/kubeconfig.ts';
import type { Value } from './config.ts';

export interface ClusterSettings {
  readonly kubeconfig: Value<string | undefined>;
  readonly context: Value<string | undefined>;
}

export async function findCluster(
  settings: ClusterSettings,
  env: Readonly<Record<string, string | undefined>>,
): Promise<KubeConnection | undefined> {
  const context = settings.context.value;
  if (settings.kubeconfig.value) {
    const paths = kubeconfigPaths(settings.kubeconfig.value, undefined);
    const connection = await loadKubeconfig(paths, context);
    if (!connection) {
      throw new UsageError(`${settings.kubeconfig.source} names ${settings.kubeconfig.value}, which does not exist`, {
        hints: ['fix the path, or unset KUBECONFIG to use the in-cluster or Google Cloud discovery'],
      });
    }
    return connection;
  }
  const home = kubeconfigPaths(undefined, env.HOME);
  if (home.some((p) => existsSync(p))) return loadKubeconfig(home, context);
  const inCluster = await inClusterConnection(env);
  if (inCluster) return inCluster;
  if (context) throw new UsageError(`--context ${context} given, but there is no kubeconfig`);
  return undefined;
}
