// Traffic Director with Envoy, the original's default TD flavour (its /td_resources bootstrap template and
// iptables.sh): Envoy as UID/GID 1337 with a bootstrap that points ADS at Traffic Director, and the outbound capture
// to 15001 that leaves the metadata server (169.254.169.254/32) alone and sends DNS to Envoy's 15053. The app starts
// once Envoy's admin port says the server is live with its workers started (the original's WaitEnvoyReady).
import { join } from 'node:path';
import type { KrunContext } from '../context.ts';
import { writeFileAtomic } from '../fs/atomic-file.ts';
import type { Logger } from '../log/logger.ts';
import type { RunConfig } from '../run/config.ts';
import { startAgent, supervision } from './agent.ts';
import { captureOutbound } from './capture.ts';
import { ENVOY_ADMIN, saveEnvoyConfigDump } from './diagnostics.ts';
import { MESH_PATHS } from './injector.ts';
import { OUTBOUND_CAPTURE_PORT } from './iptables.ts';
import { assertReachable, ownedDirs, PROXY_OWNER } from './proxy-user.ts';

/**
 * Never captured in this mode (iptables.sh -x): the metadata server, whose tokens Envoy's call credentials use, at
 * its IPv4 address and the IPv6 one Google Cloud gives it where instances have IPv6.
 */
export const TD_EXCLUDED_RANGES = ['169.254.169.254/32', 'fd20:ce::254/128'] as const;
/** The roots Envoy verifies Traffic Director with (the original's XDS_SERVER_CERT). */
export const SYSTEM_ROOTS = '/etc/ssl/certs/ca-certificates.crt';
export const TD_ENVOY_BOOTSTRAP = 'etc/istio/proxy/td-envoy-bootstrap.json';
const ADMIN_PORT = Number(new URL(ENVOY_ADMIN).port);

export interface TdEnvoyBootstrapInputs {
  readonly serverUri: string;
  readonly projectNumber: string;
  readonly network: string;
  /** `<uuid>~<ip>`. */
  readonly nodeId: string;
  readonly zone: string;
  readonly rootCerts: string;
}

/** Traffic Director's gRPC service, with the instance's credentials from the metadata server. */
function trafficDirector(i: TdEnvoyBootstrapInputs) {
  return {
    api_type: 'GRPC',
    transport_api_version: 'V3',
    grpc_services: [
      {
        google_grpc: {
          target_uri: i.serverUri,
          stat_prefix: 'trafficdirector',
          channel_credentials: { ssl_credentials: { root_certs: { filename: i.rootCerts } } },
          call_credentials: [{ google_compute_engine: {} }],
          channel_args: {
            args: {
              'grpc.keepalive_time_ms': { int_value: 10_000 },
              'grpc.keepalive_timeout_ms': { int_value: 20_000 },
            },
          },
        },
      },
    ],
  };
}

/**
 * The Envoy bootstrap of the original's td_bootstrap template with its substitutions made (tracing and the access
 * log off, no inbound backend ports, as it set them), as JSON.
 */
export function tdEnvoyBootstrap(i: TdEnvoyBootstrapInputs) {
  const ads = { ads: {}, resource_api_version: 'V3' };
  return {
    node: {
      id: `projects/${i.projectNumber}/networks/${i.network}/nodes/${i.nodeId}`,
      cluster: 'cluster',
      locality: { zone: i.zone },
      metadata: {
        TRAFFICDIRECTOR_INTERCEPTION_PORT: String(OUTBOUND_CAPTURE_PORT),
        TRAFFICDIRECTOR_ENABLE_TRACING: 'false',
        TRAFFICDIRECTOR_ACCESS_LOG_PATH: '',
        TRAFFICDIRECTOR_INBOUND_BACKEND_PORTS: '',
      },
    },
    dynamic_resources: { ads_config: trafficDirector(i), cds_config: ads, lds_config: ads },
    cluster_manager: { load_stats_config: trafficDirector(i) },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: ADMIN_PORT } } },
    layered_runtime: {
      layers: [{ name: 'rtds_layer', rtds_layer: { name: 'traffic_director_runtime', rtds_config: ads } }],
    },
  };
}

/** Envoy's admin stats: live (server.state 0) with its workers started. */
async function envoyLive(signal: AbortSignal): Promise<boolean> {
  const url = `${ENVOY_ADMIN}/stats?filter=^(server\\.state|listener_manager\\.workers_started)$`;
  try {
    const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]) });
    const stats = Object.fromEntries(
      (await res.text()).split('\n').map((l) => l.split(':').map((p) => p.trim()) as [string, string]),
    );
    return res.ok && stats['server.state'] === '0' && stats['listener_manager.workers_started'] === '1';
  } catch {
    return false;
  }
}

export interface TdEnvoyStarted {
  readonly bootstrap: string;
  stop(): Promise<void>;
}

/** Writes the bootstrap, applies the capture and starts Envoy as the proxy user; resolves once it is live. */
export async function startTdEnvoy(
  inputs: TdEnvoyBootstrapInputs,
  config: RunConfig,
  ctx: KrunContext,
  log: Logger,
): Promise<TdEnvoyStarted> {
  const base = config.baseDir.value;
  const path = join(base, TD_ENVOY_BOOTSTRAP);
  await ownedDirs(base, [[MESH_PATHS.proxyDir, 0o755]], PROXY_OWNER);
  // Read-only for Envoy: root's, readable by all (it holds no secret: the credentials come from the metadata server).
  await writeFileAtomic(path, `${JSON.stringify(tdEnvoyBootstrap(inputs), null, 2)}\n`, 0o644);
  await assertReachable(config.envoy.value, PROXY_OWNER, 'Envoy', 'execute');
  await assertReachable(path, PROXY_OWNER, 'the Envoy bootstrap', 'read');
  await captureOutbound(config, '/etc/resolv.conf', ctx.env, log, TD_EXCLUDED_RANGES);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined) env[k] = v;
  const envoy = await startAgent({
    name: 'Envoy',
    binary: config.envoy.value,
    args: ['--config-path', path, '--log-level', 'info', '--allow-unknown-static-fields'],
    env,
    cwd: base,
    uid: PROXY_OWNER.uid,
    gid: PROXY_OWNER.gid,
    ready: () => envoyLive(ctx.signal),
    readyDescription: `${ENVOY_ADMIN}/stats showing server.state 0 and workers started`,
    diagnose: () => saveEnvoyConfigDump(base),
    hints: [
      `check the bootstrap ${path}`,
      'Traffic Director needs the instance identity (metadata server) with roles/trafficdirector.client',
    ],
    ...supervision(config, ctx, log),
  });
  return { bootstrap: path, stop: () => envoy.stop() };
}
