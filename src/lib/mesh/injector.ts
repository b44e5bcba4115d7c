// What Istio's sidecar injector would have given the Pod: pilot-agent's environment, the Pod labels file (downward
// API format), the istiod root certificate, and what the app sees. Pure builders over fixed inputs; the paths are
// absolute under the base directory (the original used paths relative to the working directory: a bug).
import { join } from 'node:path';
import { UsageError } from '../errors.ts';
import type { MeshMode } from './mode.ts';

/** Pod paths, relative to the base directory. */
export const MESH_PATHS = {
  istioToken: 'var/run/secrets/tokens/istio-token',
  rootCert: 'var/run/secrets/istio/root-cert.pem',
  outputCerts: 'var/run/secrets/istio.io',
  podLabels: 'etc/istio/pod/labels',
  proxyDir: 'etc/istio/proxy',
  grpcBootstrap: 'etc/istio/proxy/grpc_bootstrap.json', // the original's name, not Istio's grpc-bootstrap.json
  envoyDir: 'var/lib/istio/envoy',
} as const;

/** Where Istio's proxy image installs Envoy's bootstrap template. */
export const ENVOY_BOOTSTRAP_TEMPLATE = '/var/lib/istio/envoy/envoy_bootstrap_tmpl.json';

/** The UID/GID Envoy and pilot-agent run as in sidecar mode; iptables never captures its traffic. */
export const PROXY_UID = 1337;
/** Envoy's HTTP proxy listener in whitebox mode (Istio's HTTP_PROXY_PORT). */
export const HTTP_PROXY_PORT = 15007;

export interface MeshInputs {
  readonly mode: Exclude<MeshMode, 'none'>;
  readonly baseDir: string;
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  readonly podName: string;
  /** K_REVISION, else Istio's default canonical revision `latest`. */
  readonly revision: string;
  readonly trustDomain: string;
  readonly xdsAddr: string;
  readonly caAddr: string;
  readonly istiodSan: string;
  readonly clusterId: string;
  readonly meshId: string;
  readonly statusPort: number;
  /** The Envoy binary pilot-agent starts (sidecar and whitebox modes). */
  readonly envoy: string;
  /** An explicit PROXY_CONFIG from the environment: its fields win over krun's. */
  readonly proxyConfig?: Readonly<Record<string, unknown>> | undefined;
  readonly isRoot: boolean;
  /** On Google Cloud the agent may read the metadata server; elsewhere it must never probe 169.254.169.254. */
  readonly onGoogleCloud: boolean;
  /** A GKE cluster: the agent's own STS exchange needs its URL and GCP_METADATA (PROJECT|NUMBER|NAME|LOCATION). */
  readonly gke?: { readonly clusterUrl: string; readonly gcpMetadata: string } | undefined;
  /** krun writes GKE's workload certificate files (CA_POOL): the agent serves them instead of asking a CA. */
  readonly workloadCertificates?: boolean | undefined;
}

export function revisionOf(env: Readonly<Record<string, string | undefined>>): string {
  return env.K_REVISION || 'latest';
}

/** The environment pilot-agent starts with (on top of krun's own, minus KUBERNETES_SERVICE_*). */
export function agentEnvironment(i: MeshInputs): Record<string, string> {
  const env: Record<string, string> = {
    CLOUD_PLATFORM: i.onGoogleCloud ? 'gcp' : 'none',
    // configPath absolute: the agent derives its xDS socket from it and puts `unix:///<configPath>/XDS` in the gRPC
    // bootstrap; Istio's default `./etc/istio/proxy` would come out as /etc/istio/proxy/XDS, which is not there.
    PROXY_CONFIG: JSON.stringify({
      discoveryAddress: i.xdsAddr,
      statusPort: i.statusPort,
      configPath: join(i.baseDir, MESH_PATHS.proxyDir),
      // The Envoy krun found, and the bootstrap template where Istio's proxy image has it (pilot-agent's default is
      // relative to its working directory, the base directory); pilot-agent's ISTIO_BOOTSTRAP still overrides it.
      ...(i.mode === 'proxyless' ? {} : { binaryPath: i.envoy, proxyBootstrapTemplatePath: ENVOY_BOOTSTRAP_TEMPLATE }),
      ...i.proxyConfig,
    }),
    ISTIOD_SAN: i.istiodSan,
    PILOT_CERT_PROVIDER: 'istiod',
    JWT_POLICY: 'third-party-jwt',
    POD_NAME: i.podName,
    POD_NAMESPACE: i.namespace,
    INSTANCE_IP: '127.0.0.1',
    SERVICE_ACCOUNT: i.serviceAccount,
    TRUST_DOMAIN: i.trustDomain,
    CANONICAL_SERVICE: i.name,
    CANONICAL_REVISION: i.revision,
    ISTIO_META_CLUSTER_ID: i.clusterId,
    ISTIO_META_MESH_ID: i.meshId,
    ISTIO_META_WORKLOAD_NAME: i.name,
    ISTIO_META_APP_CONTAINERS: 'app',
    ISTIO_META_INTERCEPTION_MODE: i.mode === 'sidecar' ? 'REDIRECT' : 'NONE',
    // DNS capture needs the iptables redirect of port 53 to the agent's DNS proxy (15053): sidecar mode only.
    ISTIO_META_DNS_CAPTURE: i.mode === 'sidecar' ? 'true' : 'false',
    OUTPUT_CERTS: join(i.baseDir, MESH_PATHS.outputCerts),
    GRPC_XDS_BOOTSTRAP: join(i.baseDir, MESH_PATHS.grpcBootstrap),
  };
  // Unset, the agent uses the discovery address and its ISTIOD_SAN; an explicit CA_ADDR skips that name override.
  if (i.caAddr !== i.xdsAddr) env.CA_ADDR = i.caAddr;
  if (i.mode === 'proxyless') {
    env.DISABLE_ENVOY = 'true';
    env.ISTIO_META_GENERATOR = 'grpc';
  }
  if (i.gke) {
    env.GKE_CLUSTER_URL = i.gke.clusterUrl;
    env.GCP_METADATA = i.gke.gcpMetadata;
  }
  if (i.workloadCertificates) {
    // pilot-agent serves ./var/run/secrets/workload-spiffe-credentials (relative to its working directory, the base)
    // and watches it; current Istio names the provider GkeWorkloadCertificate (the original's ASM-era
    // GoogleGkeWorkloadCertificate is "not registered" there). With file certificates it no longer finds istiod's
    // root by itself: XDS_ROOT_CA names it.
    env.CA_PROVIDER = 'GkeWorkloadCertificate';
    env.XDS_ROOT_CA = join(i.baseDir, MESH_PATHS.rootCert);
  }
  if (i.mode === 'whitebox') env.HTTP_PROXY_PORT = String(HTTP_PROXY_PORT);
  if (!i.isRoot) env.ISTIO_META_UNPRIVILEGED_POD = 'true';
  return env;
}

/** PROXY_CONFIG as Istio reads it: a ProxyConfig in YAML or JSON. */
export async function parseProxyConfig(raw: string): Promise<Record<string, unknown>> {
  const { parse } = await import('yaml');
  let value: unknown;
  try {
    value = parse(raw);
  } catch (err) {
    value = err;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Error) {
    throw new UsageError('PROXY_CONFIG is not a ProxyConfig (a YAML or JSON mapping)', {
      hints: ['e.g. PROXY_CONFIG=\'{"holdApplicationUntilProxyStarts": true}\'', 'or unset it: krun fills in the rest'],
    });
  }
  return value as Record<string, unknown>;
}

export function agentArgs(namespace: string): string[] {
  return ['proxy', 'sidecar', '--domain', `${namespace}.svc.cluster.local`];
}

/** etc/istio/pod/labels as the downward API writes it: sorted `key="value"` lines. */
export function podLabels(i: Pick<MeshInputs, 'name' | 'revision'>): string {
  const labels: Record<string, string> = {
    app: i.name,
    'security.istio.io/tlsMode': 'istio',
    'service.istio.io/canonical-name': i.name,
    'service.istio.io/canonical-revision': i.revision,
    version: i.revision,
  };
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join('\n');
}

export interface RootCert {
  readonly pem: string;
  readonly source: string;
}

/** The istiod root: ConfigMap istio-ca-root-cert in the workload namespace, else mesh-env/env CAROOT_ISTIOD. */
export function chooseRootCert(
  configMap: string | undefined,
  setting: { value: string | undefined; source: string },
): RootCert | undefined {
  if (configMap?.includes('BEGIN CERTIFICATE')) return { pem: configMap, source: 'ConfigMap istio-ca-root-cert' };
  if (setting.value?.includes('BEGIN CERTIFICATE')) return { pem: setting.value, source: setting.source };
  return undefined;
}

/** What the app gets on top of its Pod environment. */
export function appMeshEnvironment(mode: MeshMode, baseDir: string): Record<string, string> {
  if (mode === 'none') return {};
  const certs = join(baseDir, MESH_PATHS.outputCerts);
  const env: Record<string, string> = {
    KRUN_MESH_MODE: mode,
    KRUN_MESH_CERTS_DIR: certs,
    KRUN_MESH_CERT_CHAIN: join(certs, 'cert-chain.pem'),
    KRUN_MESH_KEY: join(certs, 'key.pem'),
    KRUN_MESH_ROOT_CERT: join(certs, 'root-cert.pem'),
  };
  if (mode === 'proxyless') env.GRPC_XDS_BOOTSTRAP = join(baseDir, MESH_PATHS.grpcBootstrap);
  if (mode === 'whitebox') {
    const proxy = `http://127.0.0.1:${HTTP_PROXY_PORT}`;
    const noProxy = 'localhost,127.0.0.1,::1';
    Object.assign(env, { HTTP_PROXY: proxy, http_proxy: proxy, NO_PROXY: noProxy, no_proxy: noProxy });
  }
  return env;
}
