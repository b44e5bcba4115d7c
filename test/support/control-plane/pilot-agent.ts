// Starts the real pilot-agent without Envoy (Istio's proxyless "grpc-agent" shape), laid out the way a Pod would
// have it: the istio-ca token and istiod root in ./var/run/secrets, certificates written to OUTPUT_CERTS.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlPlaneInfo } from './index.ts';
import { ISTIO_CLUSTER_ID, ISTIOD_SAN } from './istio.ts';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess } from './process.ts';

export interface AgentOptions {
  readonly dir: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** A TokenRequest token with audience istio-ca. */
  readonly token: string;
  /** istiod's root certificate (ConfigMap istio-ca-root-cert). */
  readonly rootCert: string;
}

export interface Agent {
  readonly process: ManagedProcess;
  /** Where the agent writes key.pem, cert-chain.pem and root-cert.pem. */
  readonly certsDir: string;
}

export async function startPilotAgent(plane: ControlPlaneInfo, options: AgentOptions): Promise<Agent> {
  const { dir, namespace, serviceAccount } = options;
  mkdirSync(join(dir, 'var/run/secrets/tokens'), { recursive: true });
  mkdirSync(join(dir, 'var/run/secrets/istio'), { recursive: true });
  writeFileSync(join(dir, 'var/run/secrets/tokens/istio-token'), options.token, { mode: 0o600 });
  writeFileSync(join(dir, 'var/run/secrets/istio/root-cert.pem'), options.rootCert);
  const certsDir = join(dir, 'certs');
  mkdirSync(certsDir, { recursive: true, mode: 0o700 });
  const statusPort = await freePort();
  const env: Record<string, string | undefined> = {
    ...process.env,
    KUBERNETES_SERVICE_HOST: undefined,
    // Never probe cloud metadata servers (169.254.169.254): nothing but loopback is reachable or allowed.
    CLOUD_PLATFORM: 'none',
    DISABLE_ENVOY: 'true',
    ISTIO_META_GENERATOR: 'grpc',
    OUTPUT_CERTS: certsDir,
    PILOT_CERT_PROVIDER: 'istiod',
    PROXY_CONFIG: JSON.stringify({ discoveryAddress: plane.istiod.secureGrpcAddress, statusPort }),
    ISTIOD_SAN,
    POD_NAME: `${serviceAccount}-test`,
    POD_NAMESPACE: namespace,
    INSTANCE_IP: '127.0.0.1',
    SERVICE_ACCOUNT: serviceAccount,
    ISTIO_META_CLUSTER_ID: ISTIO_CLUSTER_ID,
    TRUST_DOMAIN: 'cluster.local',
    ISTIO_META_DNS_CAPTURE: 'false',
    JWT_POLICY: 'third-party-jwt',
  };
  const proc = startProcess(`pilot-agent-${namespace}`, plane.fixtures.pilotAgent, {
    logDir: dir,
    cwd: dir,
    env,
    args: ['proxy', 'sidecar', '--domain', `${namespace}.svc.cluster.local`],
  });
  return { process: proc, certsDir };
}
