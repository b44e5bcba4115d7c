// The cluster connection the setup commands use: the kubeconfig kubectl would use (--kubeconfig, KUBECONFIG,
// ~/.kube/config) and its current or named context.
import type { KrunContext } from '../context.ts';
import { NotFoundError } from '../errors.ts';
import { KubeClient } from '../kube/client.ts';
import { type KubeConnection, kubeconfigPaths, loadKubeconfig } from '../kube/kubeconfig.ts';

export interface KubeTarget {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
}

export async function kubeConnection(target: KubeTarget, ctx: KrunContext): Promise<KubeConnection> {
  const paths = target.kubeconfig ? [target.kubeconfig] : kubeconfigPaths(ctx.env.KUBECONFIG, ctx.env.HOME);
  const connection = await loadKubeconfig(paths, target.context);
  if (!connection) {
    throw new NotFoundError(`no kubeconfig found (${paths.join(':') || 'KUBECONFIG and HOME are unset'})`, {
      hints: ['krun kubeconfig --merge', '--kubeconfig PATH'],
    });
  }
  return connection;
}

export async function kubeClient(target: KubeTarget, ctx: KrunContext): Promise<KubeClient> {
  return new KubeClient(await kubeConnection(target, ctx));
}
