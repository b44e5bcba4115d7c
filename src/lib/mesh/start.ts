// decideMeshMode, then startMesh: lay out what the injector would have (labels, istiod root, directories), apply the
// iptables capture in sidecar mode, start pilot-agent and wait until it is ready. The launcher calls it after the
// Pod files (tokens) are written and before the app starts; the result's env goes to the app, stop() runs last.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { writeFileAtomic } from '../fs/atomic-file.ts';
import type { Logger } from '../log/logger.ts';
import type { Resolved } from '../run/launcher.ts';
import { httpProbe } from '../run/readiness.ts';
import { startAgent, supervision } from './agent.ts';
import { captureOutbound } from './capture.ts';
import { saveEnvoyConfigDump } from './diagnostics.ts';
import {
  agentArgs,
  agentEnvironment,
  appMeshEnvironment,
  MESH_PATHS,
  type MeshInputs,
  parseProxyConfig,
  podLabels,
  revisionOf,
} from './injector.ts';
import { decideMode, type MeshMode, type ModeDecision } from './mode.ts';
import { executable, findable } from './probe.ts';
import { assertReachable, ownedDirs, PROXY_OWNER } from './proxy-user.ts';
import { istiodRootRefresh, readIstiodRoot, writeIstiodRoot } from './root-cert.ts';
import { PRIVATE_KEY_FILE, WORKLOAD_CERT_DIR } from './workload-cert.ts';

export interface Mesh {
  readonly mode: MeshMode;
  /** Added to the app's environment. */
  readonly env: Readonly<Record<string, string>>;
  stop(): Promise<void>;
  /** A task for the refresh loop (keepFresh): returns when it wants to run again. */
  readonly refresh?: (() => Promise<number>) | undefined;
  /** What a renewed CA_POOL certificate needs from the proxy. */
  readonly certificateRenewed?: (() => Promise<void>) | undefined;
}

async function nonEmpty(path: string): Promise<boolean> {
  try {
    return (await stat(path)).size > 0;
  } catch {
    return false;
  }
}

/** pilot-agent's GKE variables, for the cluster of config.clusterUrl (none for a Fleet member that is not GKE). */
export function gkeOf(config: Resolved['config'], log: Logger): MeshInputs['gke'] {
  const url = config.clusterUrl.value;
  const cluster = /\/projects\/([^/]+)\/locations\/([^/]+)\/clusters\/([^/]+)$/.exec(url ?? '');
  if (!url || !cluster) {
    if (config.clusterUrl.source !== 'unset') log.info(`no GKE_CLUSTER_URL: ${config.clusterUrl.source}`);
    return undefined;
  }
  const [, project = '', location = '', name = ''] = cluster;
  // The project number is known for krun's own project; a fleet member's cluster may live in another.
  const number = project === config.projectId.value ? (config.projectNumber.value ?? '') : '';
  return { clusterUrl: url, gcpMetadata: [project, number, name, location].join('|') };
}

/** What the agent writes (its config and Envoy's bootstrap, the certificates, its sockets): the proxy user's. */
const PROXY_DIRS: readonly [string, number][] = [
  [MESH_PATHS.proxyDir, 0o755],
  [MESH_PATHS.outputCerts, 0o755],
  [MESH_PATHS.envoyDir, 0o700],
  // pilot-agent's SDS and credential sockets, relative to its working directory (the base directory).
  ['var/run/secrets/workload-spiffe-uds', 0o755],
  ['var/run/secrets/credential-uds', 0o755],
];

/** The original's debug knobs, as pilot-agent flags (one argv entry each: a value can't smuggle in another flag). */
function agentLogArgs(config: Pick<Resolved['config'], 'agentLogLevel' | 'envoyLogLevel'>): string[] {
  const agent = config.agentLogLevel.value;
  const envoy = config.envoyLogLevel.value;
  return [...(agent ? [`--log_output_level=${agent}`] : []), ...(envoy ? [`--proxyLogLevel=${envoy}`] : [])];
}

const NO_MESH: Mesh = { mode: 'none', env: {}, stop: async () => {} };

/** The mode, decided (and logged) before the Pod files are written: the proxy user may need to read istio-token. */
export async function decideMeshMode(resolved: Resolved, isRoot: boolean, ctx: KrunContext): Promise<ModeDecision> {
  const { config, client } = resolved;
  const decision = decideMode({
    setting: config.meshMode.value,
    settingSource: config.meshMode.source,
    cluster: client !== undefined,
    isRoot,
    interceptionMode: config.interceptionMode.value,
    hasPilotAgent: await executable(config.pilotAgent.value),
    hasEnvoy: await executable(config.envoy.value),
    hasIptables: await findable(config.iptablesRestore.value, ctx.env),
  });
  ctx.log.info(`mesh mode ${decision.mode}: ${decision.reason}`, { component: 'mesh' });
  return decision;
}

/** In sidecar mode pilot-agent and Envoy run as the proxy user (UID/GID 1337), whose traffic the capture lets through. */
export function proxyUserOf(mode: MeshMode, isRoot: boolean) {
  return mode === 'sidecar' && isRoot ? PROXY_OWNER : undefined;
}

export async function startMesh(
  resolved: Resolved,
  decision: ModeDecision,
  isRoot: boolean,
  ctx: KrunContext,
): Promise<Mesh> {
  const { config, client } = resolved;
  const log = ctx.log.with({ component: 'mesh' });
  const mode = decision.mode;
  if (mode === 'none') return NO_MESH;
  if (!client) {
    throw new UsageError(`mesh mode ${mode} needs a cluster (${config.meshMode.source})`, {
      hints: ['set KUBECONFIG (or run on Google Cloud)', 'KRUN_MESH_MODE=none runs without the mesh'],
    });
  }
  if (!(await executable(config.pilotAgent.value))) {
    throw new UsageError(`mesh mode ${mode} needs pilot-agent, not found at ${config.pilotAgent.value}`, {
      hints: ['set KRUN_PILOT_AGENT to its path', 'KRUN_MESH_MODE=none runs without the mesh'],
    });
  }
  const base = config.baseDir.value;
  const inputs: MeshInputs = {
    mode,
    baseDir: base,
    namespace: config.namespace.value,
    name: config.name.value,
    serviceAccount: config.serviceAccount.value,
    podName: config.podName.value,
    revision: revisionOf(ctx.env),
    trustDomain: config.trustDomain.value,
    xdsAddr: config.xdsAddr.value,
    caAddr: config.caAddr.value,
    istiodSan: config.istiodSan.value,
    clusterId: config.clusterId.value,
    meshId: config.meshId.value,
    statusPort: config.meshStatusPort.value,
    envoy: config.envoy.value,
    workloadCertificates: config.caPool.value !== undefined,
    proxyConfig: ctx.env.PROXY_CONFIG ? await parseProxyConfig(ctx.env.PROXY_CONFIG) : undefined,
    isRoot,
    onGoogleCloud: config.projectId.value !== undefined,
    gke: gkeOf(config, log),
  };

  // The istiod root: pilot-agent refuses to start without it.
  const rootSource = {
    client,
    namespace: inputs.namespace,
    setting: config.istiodRootCert,
    log,
  };
  const root = await readIstiodRoot(rootSource, false, ctx.signal);
  if (!root) {
    throw new UsageError(`no istiod root certificate for mesh mode ${mode}`, {
      hints: [
        `grant "get configmaps/istio-ca-root-cert" in ${inputs.namespace}`,
        'or set CAROOT_ISTIOD (env or mesh-env) to the PEM',
      ],
    });
  }
  // The directories the proxy user writes are its own; the other modes run the agent as krun's user.
  const proxyOwner = proxyUserOf(mode, isRoot);
  await ownedDirs(
    base,
    [
      ['etc/istio/pod', 0o755],
      ['var/run/secrets/istio', 0o755],
    ],
    undefined,
  );
  await ownedDirs(base, PROXY_DIRS, proxyOwner);
  await writeIstiodRoot(base, root);
  await writeFileAtomic(join(base, MESH_PATHS.podLabels), podLabels(inputs), 0o644);
  if (proxyOwner) {
    await assertReachable(config.pilotAgent.value, proxyOwner, 'pilot-agent', 'execute');
    await assertReachable(config.envoy.value, proxyOwner, 'Envoy', 'execute');
    await assertReachable(join(base, MESH_PATHS.rootCert), proxyOwner, 'the istiod root', 'read');
    await assertReachable(join(base, MESH_PATHS.istioToken), proxyOwner, 'the istio-token', 'read');
    if (inputs.workloadCertificates) {
      const key = join(base, WORKLOAD_CERT_DIR, PRIVATE_KEY_FILE);
      await assertReachable(key, proxyOwner, 'the workload key', 'read');
    }
  }
  log.info('wrote the mesh files', { rootCert: root.source });

  if (mode === 'sidecar') {
    await captureOutbound(config, '/etc/resolv.conf', ctx.env, log);
  }

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined && !k.startsWith('KUBERNETES_SERVICE')) env[k] = v;
  Object.assign(env, agentEnvironment(inputs));

  const certs = join(base, MESH_PATHS.outputCerts);
  const certFiles = ['cert-chain.pem', 'key.pem', 'root-cert.pem'].map((f) => join(certs, f));
  const statusProbe = httpProbe(`http://127.0.0.1:${inputs.statusPort}/healthz/ready`);
  const proxyless = mode === 'proxyless';
  const agent = await startAgent({
    binary: config.pilotAgent.value,
    args: [...agentArgs(inputs.namespace), ...agentLogArgs(config)],
    env,
    cwd: base,
    ...(proxyOwner ? { uid: proxyOwner.uid, gid: proxyOwner.gid } : {}),
    ready: proxyless
      ? async () =>
          (await Promise.all([...certFiles, join(base, MESH_PATHS.grpcBootstrap)].map(nonEmpty))).every(Boolean)
      : () => statusProbe.check(ctx.signal),
    readyDescription: proxyless ? `the workload certificate in ${certs}` : statusProbe.description,
    diagnose: proxyless ? undefined : () => saveEnvoyConfigDump(base),
    ...supervision(config, ctx, log),
  });
  if (proxyless) {
    const leaf = await readFile(certFiles[0] as string, 'utf8');
    log.debug('workload certificate ready', { bytes: leaf.length });
  }
  const intervalMs = config.resyncIntervalSeconds.value * 1000;
  return {
    mode,
    env: appMeshEnvironment(mode, base),
    stop: () => agent.stop(),
    // A rotated istiod root reaches the agent without a restart.
    refresh: istiodRootRefresh(rootSource, base, intervalMs, ctx.clock, ctx.signal),
    // Proxyless pilot-agent sees the swapped files but never rewrites its output certificates (its file watcher's
    // handler stalls); with Envoy its SDS is expected to push them (untested here). A new agent reads them at start.
    certificateRenewed:
      proxyless && inputs.workloadCertificates
        ? () => agent.restart('the workload certificate was renewed')
        : undefined,
  };
}
