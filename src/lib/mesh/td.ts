// Traffic Director mode (`MESH=td:[projects=NUMBER][&scopes=SCOPE]`, the original's syntax): no istiod, no cluster
// needed. With Envoy, root and iptables, Envoy with capture as the original (td-envoy.ts); otherwise krun writes the
// gRPC xDS bootstrap Traffic Director expects (node id projects/<N>/networks/scope:<S>/nodes/<uuid>~<ip>, the zone,
// google_default channel credentials) and gives its path to the app in GRPC_XDS_BOOTSTRAP.
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { writeFileAtomic } from '../fs/atomic-file.ts';
import { instanceFacts } from '../gcp/metadata.ts';
import { detectPlatform } from '../gcp/platform.ts';
import type { RunConfig } from '../run/config.ts';
import { MESH_PATHS } from './injector.ts';
import { decideTdFlavour } from './mode.ts';
import { executable, findable } from './probe.ts';
import { SYSTEM_ROOTS, startTdEnvoy, tdEnvoyBootstrap } from './td-envoy.ts';

export const TD_SERVER = 'trafficdirector.googleapis.com:443';
/** The original's zone when the metadata server has none. */
export const TD_DEFAULT_ZONE = 'cloud-run-cluster';
/** GKE's workload certificate layout, which the original used too (its WorkloadCertDir). */
export const WORKLOAD_CERT_DIR = 'var/run/secrets/workload-spiffe-credentials';

export interface TdMesh {
  readonly projectNumber?: string | undefined;
  /** `scope:<SCOPE>` (the original; scope `default` unless given), or a VPC network name (`networks=`, older krun). */
  readonly network: string;
}

/** `td:projects=N&scopes=S` (also `td:?…`, `td://…`); undefined for any other MESH. */
export function parseTdMesh(mesh: string | undefined): TdMesh | undefined {
  if (!mesh?.startsWith('td:')) return undefined;
  const params = new URLSearchParams(mesh.slice(3).replace(/^\/\//, '').replace(/^\?/, ''));
  const hint = 'MESH=td:projects=PROJECT_NUMBER&scopes=SCOPE';
  for (const key of params.keys()) {
    if (!['projects', 'scopes', 'networks'].includes(key)) {
      throw new UsageError(`MESH=${mesh}: unknown parameter "${key}" (projects, scopes or networks)`, {
        hints: [hint],
      });
    }
  }
  const projectNumber = params.get('projects') || undefined;
  if (projectNumber && !/^\d+$/.test(projectNumber)) {
    throw new UsageError(`MESH=${mesh}: projects must be the numeric project number`, { hints: [hint] });
  }
  const network = params.get('networks');
  return { projectNumber, network: network || `scope:${params.get('scopes') || 'default'}` };
}

export interface TdBootstrapInputs {
  readonly serverUri: string;
  readonly projectNumber: string;
  readonly network: string;
  /** `<uuid>~<ip>`, as the original generated it. */
  readonly nodeId: string;
  readonly zone: string;
  readonly instanceIp: string;
  /** Where GKE-style workload certificates appear (certificates.pem, private_key.pem, ca_certificates.pem). */
  readonly certDir: string;
}

/** The gRPC xDS bootstrap (gRFC A27) for Traffic Director, in the shape Google's td-grpc-bootstrap writes. */
export function tdGrpcBootstrap(i: TdBootstrapInputs) {
  return {
    xds_servers: [
      { server_uri: i.serverUri, channel_creds: [{ type: 'google_default' }], server_features: ['xds_v3'] },
    ],
    node: {
      id: `projects/${i.projectNumber}/networks/${i.network}/nodes/${i.nodeId}`,
      cluster: 'cluster',
      metadata: { INSTANCE_IP: i.instanceIp },
      locality: { zone: i.zone },
    },
    certificate_providers: {
      google_cloud_private_spiffe: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: join(i.certDir, 'certificates.pem'),
          private_key_file: join(i.certDir, 'private_key.pem'),
          ca_certificate_file: join(i.certDir, 'ca_certificates.pem'),
          refresh_interval: '600s',
        },
      },
    },
    server_listener_resource_name_template: 'grpc/server?xds.resource.listening_address=%s',
  };
}

/** The first address the host name resolves to, like the original; loopback when it resolves to nothing. */
async function instanceIp(): Promise<string> {
  try {
    return (await lookup(hostname())).address;
  } catch {
    return '127.0.0.1';
  }
}

export interface TdStarted {
  readonly mode: 'td';
  readonly env: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startTd(td: TdMesh, config: RunConfig, isRoot: boolean, ctx: KrunContext): Promise<TdStarted> {
  const log = ctx.log.with({ component: 'mesh' });
  const facts = (await detectPlatform(ctx.env)).onGoogleCloud ? await instanceFacts(ctx.env) : undefined;
  const projectNumber = td.projectNumber ?? config.projectNumber.value ?? facts?.projectNumber;
  if (!projectNumber) {
    throw new UsageError(`MESH=${ctx.env.MESH} needs the project number of the Traffic Director project`, {
      hints: ['MESH=td:projects=PROJECT_NUMBER', 'or set PROJECT_NUMBER'],
    });
  }
  // XDS_ADDR given explicitly (not krun's istiod default) overrides the Traffic Director endpoint.
  const explicit = /^(flag|env|mesh-env) /.test(config.xdsAddr.source);
  const base = config.baseDir.value;
  const ip = await instanceIp();
  const serverUri = explicit ? config.xdsAddr.value : TD_SERVER;
  const nodeId = `${randomUUID()}~${ip}`;
  const zone = facts?.zone ?? TD_DEFAULT_ZONE;
  const decision = decideTdFlavour({
    setting: config.meshMode.value,
    settingSource: config.meshMode.source,
    isRoot,
    interceptionMode: config.interceptionMode.value,
    hasEnvoy: await executable(config.envoy.value),
    hasIptables: await findable(config.iptablesRestore.value, ctx.env),
  });
  if (decision.flavour === 'envoy') {
    const inputs = { serverUri, projectNumber, network: td.network, nodeId, zone, rootCerts: SYSTEM_ROOTS };
    log.info('mesh mode td: Traffic Director (MESH=td:…) with Envoy', {
      reason: decision.reason,
      node: tdEnvoyBootstrap(inputs).node.id,
      server: serverUri,
    });
    const envoy = await startTdEnvoy(inputs, config, ctx, log);
    return { mode: 'td', env: { KRUN_MESH_MODE: 'td' }, stop: envoy.stop };
  }
  const bootstrap = tdGrpcBootstrap({
    serverUri,
    projectNumber,
    network: td.network,
    nodeId,
    zone,
    instanceIp: ip,
    certDir: join(base, WORKLOAD_CERT_DIR),
  });
  const path = join(base, MESH_PATHS.grpcBootstrap);
  await mkdir(join(base, MESH_PATHS.proxyDir), { recursive: true, mode: 0o755 });
  await writeFileAtomic(path, `${JSON.stringify(bootstrap, null, 2)}\n`, 0o644);
  log.info('mesh mode td: Traffic Director (MESH=td:…), proxyless gRPC', {
    reason: decision.reason,
    node: bootstrap.node.id,
    server: serverUri,
    bootstrap: path,
  });
  return { mode: 'td', env: { KRUN_MESH_MODE: 'td', GRPC_XDS_BOOTSTRAP: path }, stop: async () => {} };
}
