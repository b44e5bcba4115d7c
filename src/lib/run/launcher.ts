// `krun run`: make the process environment look like the Pod kubelet would have created, start the app, and
// supervise it. The order matters and is the contract: configuration, cluster, Pod files (tokens, mounts), app,
// readiness, then krun's own listeners; refresh loops run in the background until the app exits.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type Audit, createAudit } from '../audit/audit.ts';
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import type { Owner } from '../fs/atomic-file.ts';
import type { HboneServer } from '../hbone/server.ts';
import { KubeClient } from '../kube/client.ts';
import type { KubeConnection } from '../kube/kubeconfig.ts';
import { decideMeshMode, type Mesh, proxyUserOf, startMesh } from '../mesh/start.ts';
import { parseTdMesh, startTd } from '../mesh/td.ts';
import { workloadCertificateTask } from '../mesh/workload-cert.ts';
import { type SshDebug, startSshDebug } from '../ssh/start.ts';
import { type RunningApp, startApp } from './app.ts';
import { findCluster } from './cluster.ts';
import { type ConfigInput, type GoogleFacts, parseAddress, type RunConfig, resolveConfig } from './config.ts';
import { DATAPLANE_TOKEN_FILE, FEDERATED_TOKEN_FILE, googleChain } from './google-tokens.ts';
import { startHbone } from './hbone.ts';
import { loadMeshEnv } from './mesh-env.ts';
import { syncMount } from './mounts.ts';
import { httpProbe, type Probe, tcpProbe, waitReady } from './readiness.ts';
import { keepFresh } from './refresh.ts';
import type { SettingKey } from './settings.ts';
import { ISTIO_TOKEN_DIR, SERVICE_ACCOUNT_DIR, writeTokenFiles } from './tokens.ts';

export interface LaunchOptions {
  readonly flags: Readonly<Partial<Record<SettingKey, string>>>;
  /** The app command line; empty runs krun alone (a sidecar-only instance) until it is signalled. */
  readonly command: readonly string[];
  readonly isRoot: boolean;
}

export interface Resolved {
  readonly config: RunConfig;
  readonly connection: KubeConnection | undefined;
  readonly client: KubeClient | undefined;
}

/** Resolves the configuration, connecting to the cluster (read-only) to load mesh-env when one is configured. */
export async function resolve(options: LaunchOptions, ctx: KrunContext): Promise<Resolved> {
  const input: ConfigInput = {
    flags: options.flags,
    env: ctx.env,
    meshEnv: {},
    hostname: ctx.env.HOSTNAME ?? hostname(),
    isRoot: options.isRoot,
    cwd: ctx.cwd,
  };
  const first = resolveConfig(input);
  let connection = await findCluster(first, ctx.env);
  let google: GoogleFacts | undefined;
  // Traffic Director needs no cluster: like the original, MESH=td:… skips GKE discovery.
  if (!connection && !parseTdMesh(ctx.env.MESH)) {
    // Loaded only here: off Google Cloud and with a kubeconfig, krun never pays for the Google libraries.
    const { discoverGke } = await import('../gcp/discover.ts');
    const found = await discoverGke(
      {
        projectId: first.projectId.value,
        projectNumber: first.projectNumber.value,
        clusterName: first.clusterName.value,
        clusterLocation: first.clusterLocation.value,
      },
      ctx.env,
      ctx.log,
    );
    if (found) {
      connection = found.connection;
      const facts = found.facts;
      google = {
        project: found.project,
        projectNumber: facts?.projectNumber,
        instanceId: facts?.instanceId,
        serviceAccount: facts?.serviceAccount,
        cluster: found.cluster,
      };
    }
  }
  if (!connection) return { config: first, connection, client: undefined };
  const client = new KubeClient(connection);
  const meshEnv = await loadMeshEnv(client, ctx.log, ctx.signal);
  const config = resolveConfig({ ...input, meshEnv, contextNamespace: connection.namespace, google });
  return { config, connection, client };
}

function readinessProbe(config: RunConfig): Probe | undefined {
  if (config.startupProbeHttp.value) return httpProbe(config.startupProbeHttp.value);
  if (config.startupProbeTcp.value) return tcpProbe(config.startupProbeTcp.value);
  return config.appPortWait.value ? tcpProbe(config.appAddress.value) : undefined;
}

/** The environment the app starts with: krun's own, plus what a Pod's containers get. */
export function appEnvironment(
  config: RunConfig,
  env: Readonly<Record<string, string | undefined>>,
  withCluster: boolean,
) {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  // Cloud Run's PORT is krun's (HBONE); the app listens on its own port (8080 unless PORT_http says otherwise).
  out.PORT = String(parseAddress(config.appAddress).port);
  out.POD_NAME = config.podName.value;
  out.POD_NAMESPACE = config.namespace.value;
  out.SERVICE_ACCOUNT = config.serviceAccount.value;
  out.KRUN_BASE_DIR = config.baseDir.value;
  if (withCluster) out.KRUN_SERVICE_ACCOUNT_DIR = join(config.baseDir.value, SERVICE_ACCOUNT_DIR);
  const google = config.googleTokens.value;
  if (withCluster && google !== 'off') {
    out.KRUN_GOOGLE_FEDERATED_TOKEN_FILE = join(config.baseDir.value, ISTIO_TOKEN_DIR, FEDERATED_TOKEN_FILE);
    if (google === 'dataplane') {
      out.KRUN_GOOGLE_DATAPLANE_TOKEN_FILE = join(config.baseDir.value, ISTIO_TOKEN_DIR, DATAPLANE_TOKEN_FILE);
    }
  }
  return out;
}

/** Writes the Pod files once; returns when each should next be refreshed. Errors here stop krun before the app. */
async function preparePodFiles(
  resolved: Resolved,
  ctx: KrunContext,
  owner: Owner | undefined,
  proxyUser: Owner | undefined,
  onCertificateRenewed: () => Promise<void>,
) {
  const { config, client, connection } = resolved;
  const google = googleChain(config, ctx.env);
  if (!client || !connection) {
    if (google) {
      throw new UsageError(`${config.googleTokens.source} needs a cluster to request the subject token from`, {
        hints: ['set KUBECONFIG, or run on Google Cloud', 'KRUN_GOOGLE_TOKENS=off turns the chain off'],
      });
    }
    return undefined;
  }
  const target = {
    namespace: config.namespace.value,
    serviceAccount: config.serviceAccount.value,
    expirationSeconds: config.tokenExpirationSeconds.value,
  };
  const tokens = () =>
    writeTokenFiles(client, {
      google,
      baseDir: config.baseDir.value,
      target,
      istioAudience: config.istioTokenAudience.value,
      ca: connection.ca,
      owner,
      // The proxy user (sidecar mode) reads the token by its group.
      istioTokenGroup: proxyUser?.gid,
      now: ctx.clock.now().getTime(),
      signal: ctx.signal,
    });
  const mounts = async () => {
    for (const mount of config.mounts.value) {
      if (await syncMount(client, target.namespace, mount, config.baseDir.value, owner, ctx.signal)) {
        ctx.log.info(`mounted ${mount.kind} ${mount.name}`, { path: mount.path });
      }
    }
    return ctx.clock.now().getTime() + config.resyncIntervalSeconds.value * 1000;
  };
  const tokensAt = await tokens();
  ctx.log.info('wrote ServiceAccount tokens', { serviceAccount: `${target.namespace}/${target.serviceAccount}` });
  if (google) {
    ctx.log.info('exchanged the ServiceAccount token for Google tokens', {
      audience: google.audience,
      dataplane: google.dataplaneServiceAccount,
    });
  }
  const mountsAt = await mounts();
  const pool = config.caPool.value;
  // After the tokens: the pool is called with the federated token, which the token loop keeps fresh.
  const certificate = pool
    ? workloadCertificateTask({
        baseDir: config.baseDir.value,
        pool,
        keyType: config.caKeyType.value,
        trustDomain: config.trustDomain.value,
        namespace: target.namespace,
        serviceAccount: target.serviceAccount,
        tokenFile: join(config.baseDir.value, ISTIO_TOKEN_DIR, FEDERATED_TOKEN_FILE),
        owner,
        proxyGroup: proxyUser?.gid,
        env: ctx.env,
        clock: ctx.clock,
        log: ctx.log.with({ component: 'ca' }),
        signal: ctx.signal,
        onRenewed: onCertificateRenewed,
      })
    : undefined;
  const certificateAt = certificate ? await certificate() : undefined;
  return { tokens, tokensAt, mounts, mountsAt, certificate, certificateAt };
}

/** The audit trail of the SSH server and the HBONE tunnels: the log, and KRUN_AUDIT_FILE when set. */
function openAudit(config: RunConfig, ctx: KrunContext): Audit {
  const file = config.auditFile.value;
  try {
    return createAudit({ log: ctx.log.with({ component: 'audit' }), file });
  } catch (err) {
    throw new UsageError(`${config.auditFile.source} is "${file}": can't open it: ${(err as Error).message}`, {
      hints: ['point KRUN_AUDIT_FILE at a writable path (its directory must exist)'],
    });
  }
}

/** Runs the launcher to completion; returns krun's exit status (the app's, when there is one). */
export async function launch(options: LaunchOptions, ctx: KrunContext): Promise<number> {
  const resolved = await resolve(options, ctx);
  const { config, connection } = resolved;
  const log = ctx.log;
  if (connection) {
    log.info('connected to the cluster', {
      server: connection.server,
      via: connection.source,
      namespace: config.namespace.value,
    });
  } else {
    log.info(
      'no cluster configured: running standalone (no tokens or mounts; set KUBECONFIG or run on Google Cloud to join a mesh)',
    );
  }
  const uid = config.uid.value;
  const owner = uid !== undefined && options.isRoot ? { uid, gid: uid } : undefined;
  const audit = openAudit(config, ctx);
  const background = new AbortController();
  const stopBackground = () => background.abort();
  ctx.signal.addEventListener('abort', stopBackground, { once: true });
  const loops: Promise<void>[] = [];
  let app: RunningApp | undefined;
  let hbone: HboneServer | undefined;
  let ssh: SshDebug | undefined;
  let mesh: Pick<Mesh, 'env' | 'stop' | 'certificateRenewed'> | undefined;
  const sshEnv = () => appEnvironment(config, ctx.env, connection !== undefined);
  try {
    const td = parseTdMesh(ctx.env.MESH);
    // Traffic Director, or Istio's mode decided before the Pod files: the proxy user may need to read istio-token.
    const plan = td
      ? ({ kind: 'td', td } as const)
      : ({ kind: 'istio', decision: await decideMeshMode(resolved, options.isRoot, ctx) } as const);
    const proxyUser = plan.kind === 'istio' ? proxyUserOf(plan.decision.mode, options.isRoot) : undefined;
    const files = await preparePodFiles(resolved, ctx, owner, proxyUser, async () => {
      await mesh?.certificateRenewed?.();
    });
    const common = { clock: ctx.clock, log, signal: background.signal };
    if (files) {
      loops.push(keepFresh(files.tokens, files.tokensAt, { ...common, what: 'token refresh' }));
      if (config.mounts.value.length > 0) {
        loops.push(keepFresh(files.mounts, files.mountsAt, { ...common, what: 'mount re-sync' }));
      }
      if (files.certificate && files.certificateAt !== undefined) {
        loops.push(
          keepFresh(files.certificate, files.certificateAt, { ...common, what: 'workload certificate renewal' }),
        );
      }
    }
    const started =
      plan.kind === 'istio'
        ? await startMesh(resolved, plan.decision, options.isRoot, ctx)
        : await startTd(plan.td, config, options.isRoot, ctx);
    mesh = started;
    if ('refresh' in started && started.refresh) {
      const at = ctx.clock.now().getTime() + config.resyncIntervalSeconds.value * 1000;
      loops.push(keepFresh(started.refresh, at, { ...common, what: 'istiod root re-read' }));
    }
    const [command, ...args] = options.command;
    if (!command) {
      ssh = await startSshDebug(config, ctx, resolved.client, sshEnv(), audit);
      hbone = await startHbone(config, ctx, audit);
      log.info('no app command given; running until signalled');
      // A signal listener does not keep Node's event loop alive: with no HBONE port, cluster or SSH server
      // there may be nothing else that does, and Node would exit 13 at once. A signal may also have come while
      // the listeners started: 'abort' never fires again for it.
      const alive = setInterval(() => {}, 2 ** 30);
      if (!ctx.signal.aborted) await new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }));
      clearInterval(alive);
      return 0;
    }
    app = await startApp({
      command,
      args,
      env: { ...appEnvironment(config, ctx.env, connection !== undefined), ...mesh.env },
      cwd: ctx.cwd,
      uid: owner?.uid,
      graceMs: config.terminationGraceSeconds.value * 1000,
      signal: ctx.signal,
      log,
    });
    const probe = readinessProbe(config);
    if (probe) {
      const state = await waitReady(probe, {
        timeoutMs: config.startupTimeoutSeconds.value * 1000,
        clock: ctx.clock,
        signal: ctx.signal,
        appExited: app.exited,
      });
      if (state === 'ready') log.info('app ready', { probe: probe.description });
      else return await app.exited;
    }
    ssh = await startSshDebug(config, ctx, resolved.client, sshEnv(), audit);
    hbone = await startHbone(config, ctx, audit);
    return await app.exited;
  } catch (err) {
    // A signal during start-up was forwarded to the app: its status is krun's. Any other failure after the app
    // started must not leave it running.
    if (app && ctx.signal.aborted) return await app.stop();
    if (app) await app.stop();
    throw err;
  } finally {
    await ssh?.close(); // first: open SSH sessions ride HBONE tunnels, which hbone.close() waits for
    await hbone?.close();
    audit.close();
    await mesh?.stop(); // after the app exited: it may need the mesh while draining
    background.abort();
    ctx.signal.removeEventListener('abort', stopBackground);
    await Promise.all(loops);
    resolved.client?.close();
  }
}
