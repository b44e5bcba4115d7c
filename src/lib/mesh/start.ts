// startMesh: decide the mode, lay out what the injector would have (labels, istiod root, directories), apply the
// iptables capture in sidecar mode, start pilot-agent and wait until it is ready. The launcher calls it after the
// Pod files (tokens) are written and before the app starts; the result's env goes to the app, stop() runs last.
import { constants } from 'node:fs';
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { writeFileAtomic } from '../fs/atomic-file.ts';
import { apiStatus } from '../kube/client.ts';
import type { Logger } from '../log/logger.ts';
import type { Resolved } from '../run/launcher.ts';
import { httpProbe } from '../run/readiness.ts';
import { startAgent } from './agent.ts';
import { captureOutbound } from './capture.ts';
import { saveEnvoyConfigDump } from './diagnostics.ts';
import {
  agentArgs,
  agentEnvironment,
  appMeshEnvironment,
  chooseRootCert,
  MESH_PATHS,
  type MeshInputs,
  PROXY_UID,
  parseProxyConfig,
  podLabels,
  revisionOf,
} from './injector.ts';
import { decideMode, type MeshMode } from './mode.ts';

export interface Mesh {
  readonly mode: MeshMode;
  /** Added to the app's environment. */
  readonly env: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** A path, or a name found on PATH. */
async function findable(name: string, env: Readonly<Record<string, string | undefined>>): Promise<boolean> {
  if (name.includes('/')) return executable(name);
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (await executable(join(dir, name))) return true;
  }
  return false;
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

const NO_MESH: Mesh = { mode: 'none', env: {}, stop: async () => {} };

export async function startMesh(resolved: Resolved, isRoot: boolean, ctx: KrunContext): Promise<Mesh> {
  const { config, client } = resolved;
  const log = ctx.log.with({ component: 'mesh' });
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
  log.info(`mesh mode ${decision.mode}: ${decision.reason}`);
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
    proxyConfig: ctx.env.PROXY_CONFIG ? await parseProxyConfig(ctx.env.PROXY_CONFIG) : undefined,
    isRoot,
    onGoogleCloud: config.projectId.value !== undefined,
    gke: gkeOf(config, log),
  };

  // The istiod root: pilot-agent refuses to start without it.
  let configMap: string | undefined;
  try {
    const cm = await client.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${inputs.namespace}/configmaps/istio-ca-root-cert`,
      { signal: ctx.signal },
    );
    configMap = cm.data?.['root-cert.pem'];
  } catch (err) {
    const status = apiStatus(err);
    if (status !== 404 && status !== 403) throw err;
    log.debug(`can't read ConfigMap istio-ca-root-cert (${status})`);
  }
  const root = chooseRootCert(
    configMap,
    config.istiodRootCert.value ? config.istiodRootCert : { value: undefined, source: 'unset' },
  );
  if (!root) {
    throw new UsageError(`no istiod root certificate for mesh mode ${mode}`, {
      hints: [
        `grant "get configmaps/istio-ca-root-cert" in ${inputs.namespace}`,
        'or set CAROOT_ISTIOD (env or mesh-env) to the PEM',
      ],
    });
  }
  // Sidecar mode runs the agent, and so Envoy, as root with group 1337 (as the original did): the capture lets that
  // group's traffic through.
  const proxyGroup = mode === 'sidecar' && isRoot ? PROXY_UID : undefined;
  for (const dir of [MESH_PATHS.proxyDir, 'etc/istio/pod', 'var/run/secrets/istio']) {
    await mkdir(join(base, dir), { recursive: true, mode: 0o755 });
  }
  await mkdir(join(base, MESH_PATHS.outputCerts), { recursive: true, mode: 0o755 });
  await mkdir(join(base, MESH_PATHS.envoyDir), { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(base, MESH_PATHS.rootCert), root.pem, 0o644);
  await writeFileAtomic(join(base, MESH_PATHS.podLabels), podLabels(inputs), 0o644);
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
    args: agentArgs(inputs.namespace),
    env,
    cwd: base,
    ...(proxyGroup !== undefined ? { uid: 0, gid: proxyGroup } : {}),
    ready: proxyless
      ? async () =>
          (await Promise.all([...certFiles, join(base, MESH_PATHS.grpcBootstrap)].map(nonEmpty))).every(Boolean)
      : () => statusProbe.check(ctx.signal),
    readyDescription: proxyless ? `the workload certificate in ${certs}` : statusProbe.description,
    diagnose: proxyless ? undefined : () => saveEnvoyConfigDump(base),
    timeoutMs: config.startupTimeoutSeconds.value * 1000,
    graceMs: config.terminationGraceSeconds.value * 1000,
    clock: ctx.clock,
    signal: ctx.signal,
    log,
    output: ctx.streams.err,
  });
  if (proxyless) {
    const leaf = await readFile(certFiles[0] as string, 'utf8');
    log.debug('workload certificate ready', { bytes: leaf.length });
  }
  return { mode, env: appMeshEnvironment(mode, base), stop: () => agent.stop() };
}
