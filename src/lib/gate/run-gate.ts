// `krun gate`: connects to the cluster (kubeconfig, else the Pod's own ServiceAccount), loads the registrations,
// starts the admin port and the traffic port, keeps mesh-env reconciled, and on SIGTERM drains: the load balancer is
// told (readyz 503), no new connection is taken, and open tunnels get the grace period to finish.
import { existsSync } from 'node:fs';
import type { KrunContext } from '../context.ts';
import { NotFoundError, PermissionError } from '../errors.ts';
import { knownProject } from '../gcp/gcloud-config.ts';
import { sharedGoogleAuth } from '../gcp/iam-admin.ts';
import { googleIdToken, type TokenSource } from '../hbone/token.ts';
import { apiStatus, KubeClient } from '../kube/client.ts';
import { inClusterConnection, kubeconfigPaths, loadKubeconfig } from '../kube/kubeconfig.ts';
import { formatHostPort, type HostPort } from '../net/address.ts';
import { startAdmin } from './admin.ts';
import type { TunnelMethod } from './defaults.ts';
import { startGate } from './gate.ts';
import { keepMeshEnv } from './mesh-env.ts';
import { Metrics } from './metrics.ts';
import { Registry } from './registry.ts';
import { refreshedAhead } from './token-refresh.ts';
import { tunnelRequest } from './tunnel-method.ts';

export interface GateCommandOptions {
  readonly listen: HostPort;
  /** The admin port (health, metrics); undefined turns it off. */
  readonly admin?: HostPort | undefined;
  readonly target: string;
  readonly tunnelMethod: TunnelMethod;
  readonly maxStreams: number;
  readonly keepAliveMs: number;
  readonly helloTimeoutMs: number;
  readonly meshEnvIntervalMs: number;
  /** Where mesh-env lives; undefined leaves mesh-env alone. */
  readonly meshEnvNamespace?: string | undefined;
  readonly graceMs: number;
  readonly nameFallback: boolean;
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
}

async function gateCluster(options: GateCommandOptions, ctx: KrunContext): Promise<KubeClient> {
  const paths = options.kubeconfig ? [options.kubeconfig] : kubeconfigPaths(ctx.env.KUBECONFIG, ctx.env.HOME);
  const fromFile = paths.some((p) => existsSync(p)) ? await loadKubeconfig(paths, options.context) : undefined;
  const connection = fromFile ?? (await inClusterConnection(ctx.env));
  if (!connection) {
    throw new NotFoundError('the gate finds no cluster: no kubeconfig and not in a Pod', {
      hints: ['run it in the cluster (krun setup-cluster installs it)', '--kubeconfig PATH'],
    });
  }
  return new KubeClient(connection);
}

export async function runGate(options: GateCommandOptions, ctx: KrunContext): Promise<void> {
  const log = ctx.log.with({ component: 'gate' });
  // A target CONNECT cannot name is a usage error now, not a refusal per tunnel later.
  tunnelRequest(options.tunnelMethod, 'https://SERVICE', options.target);
  const client = await gateCluster(options, ctx);
  const metrics = new Metrics();
  const stop = new AbortController();
  const registry = new Registry({
    client,
    log,
    clock: ctx.clock,
    nameFallback: options.nameFallback,
    signal: stop.signal,
  });
  try {
    await registry.start().catch((err: unknown) => {
      if (apiStatus(err) !== 403) throw err;
      throw new PermissionError(`the gate may not list Services cluster-wide: ${(err as Error).message}`, {
        hints: [
          'krun setup-cluster (its ClusterRole krun-gate grants get, list and watch on Services and ServiceEntries)',
          "or bind such a ClusterRole to the gate's identity",
        ],
      });
    });
    const tokenSources = new Map<string, TokenSource>();
    const auth = sharedGoogleAuth(knownProject(ctx.env));
    const gate = await startGate({
      listen: options.listen,
      resolve: (sni) => registry.resolve(sni),
      tokensFor: (origin) => {
        let tokens = tokenSources.get(origin);
        if (!tokens) {
          tokens = refreshedAhead(googleIdToken({ audience: origin, auth }), ctx.clock, log, origin);
          tokenSources.set(origin, tokens);
        }
        return tokens;
      },
      target: options.target,
      tunnelMethod: options.tunnelMethod,
      maxStreams: options.maxStreams,
      keepAliveMs: options.keepAliveMs,
      helloTimeoutMs: options.helloTimeoutMs,
      log,
      metrics,
    });
    const admin = options.admin
      ? await startAdmin({ ...options.admin, metrics, ready: () => !gate.draining })
      : undefined;
    if (options.meshEnvNamespace) {
      keepMeshEnv({
        client,
        log,
        env: ctx.env,
        namespace: options.meshEnvNamespace,
        intervalMs: options.meshEnvIntervalMs,
        signal: stop.signal,
      });
    }
    log.info('gate listening', {
      address: formatHostPort({ host: gate.address.address, port: gate.address.port }),
      ...(admin ? { admin: formatHostPort({ host: admin.address.address, port: admin.address.port }) } : {}),
      tunnel: tunnelRequest(options.tunnelMethod, 'https://SERVICE', options.target).describe,
      registrations: registry.size,
    });
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    log.info('draining', { tunnels: gate.openTunnels, gracePeriod: `${options.graceMs}ms` });
    const { forced } = await gate.drain(options.graceMs);
    if (forced > 0) log.warn('grace period over; tunnels closed', { tunnels: forced });
    admin?.server.close();
    admin?.server.closeAllConnections();
    log.info('gate stopped');
  } finally {
    stop.abort();
    client.close();
  }
}
