import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeStatusError, type TestKube } from '../kube.ts';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess } from './process.ts';
import { waitFor } from './wait.ts';

export const ISTIO_NAMESPACE = 'istio-system';
/** The name in istiod's self-signed serving certificate, which agents must ask for when dialing 127.0.0.1. */
export const ISTIOD_SAN = `istiod.${ISTIO_NAMESPACE}.svc`;
/** Istio's default cluster ID; an agent's ISTIO_META_CLUSTER_ID must match it. */
export const ISTIO_CLUSTER_ID = 'Kubernetes';

export interface Istiod {
  /** host:port of the plaintext xDS port (15010 in a cluster). */
  readonly grpcAddress: string;
  /** host:port of the mTLS xDS + CA port (15012 in a cluster): what pilot-agent dials. */
  readonly secureGrpcAddress: string;
  /** http://host:port of the debug/ready endpoint (8080 in a cluster). */
  readonly httpUrl: string;
  readonly process: ManagedProcess;
}

interface Crd {
  metadata: { name: string };
  status?: { conditions?: { type: string; status: string }[] };
}

/** Applies Istio's CRDs and waits until every one is Established. */
export async function applyIstioCrds(kube: TestKube, crdFile: string): Promise<string[]> {
  const names: string[] = [];
  for (const doc of parseAllDocuments(readFileSync(crdFile, 'utf8'))) {
    const crd = doc.toJS() as Crd | null;
    if (!crd?.metadata?.name) continue;
    try {
      await kube.post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    } catch (err) {
      if (!(err instanceof KubeStatusError && err.status === 409)) throw err;
    }
    names.push(crd.metadata.name);
  }
  for (const name of names) {
    await waitFor(`CRD ${name} established`, async () => {
      const crd = await kube.get<Crd>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }
  return names;
}

/**
 * istiod outside a cluster, as Istio's maintainers run it for development: every port on 127.0.0.1, the CA
 * enabled with its self-signed root (Secret istio-ca-secret), and workload authentication by TokenReview against
 * the test apiserver. KUBERNETES_SERVICE_HOST stays unset so istiod knows it runs out of cluster.
 */
export async function startIstiod(binary: string, dir: string, kubeconfig: string, kube: TestKube): Promise<Istiod> {
  const work = join(dir, 'istiod');
  mkdirSync(work, { recursive: true });
  const [grpc, secureGrpc, http, https, monitoring] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const env: Record<string, string | undefined> = {
    ...process.env,
    KUBERNETES_SERVICE_HOST: undefined,
    KUBERNETES_SERVICE_PORT: undefined,
    POD_NAMESPACE: ISTIO_NAMESPACE,
    POD_NAME: 'istiod-test',
    CLUSTER_ID: ISTIO_CLUSTER_ID,
    JWT_POLICY: 'third-party-jwt',
    PILOT_CERT_PROVIDER: 'istiod',
    ENABLE_CA_SERVER: 'true',
    // No webhooks exist here; skip patching them rather than log errors forever.
    INJECTION_WEBHOOK_CONFIG_NAME: '',
    VALIDATION_WEBHOOK_CONFIG_NAME: '',
    CLOUD_PLATFORM: 'none',
  };
  const proc = startProcess('istiod', binary, {
    logDir: dir,
    cwd: work,
    env,
    args: [
      'discovery',
      `--kubeconfig=${kubeconfig}`,
      `--grpcAddr=127.0.0.1:${grpc}`,
      `--secureGRPCAddr=127.0.0.1:${secureGrpc}`,
      `--httpAddr=127.0.0.1:${http}`,
      `--httpsAddr=127.0.0.1:${https}`,
      `--monitoringAddr=127.0.0.1:${monitoring}`,
      '--ctrlz_address=127.0.0.1',
      '--ctrlz_port=0',
      '--domain=cluster.local',
      '--log_output_level=default:info',
    ],
  });
  const httpUrl = `http://127.0.0.1:${http}`;
  await waitFor(
    'istiod /ready',
    async () => {
      const res = await fetch(`${httpUrl}/ready`);
      return res.ok ? true : undefined;
    },
    { process: proc, timeoutMs: 120_000 },
  );
  // The CA root is published once istiod's namespace controller runs: that is when agents can bootstrap.
  await rootCertOf(kube, ISTIO_NAMESPACE, proc);
  return {
    grpcAddress: `127.0.0.1:${grpc}`,
    secureGrpcAddress: `127.0.0.1:${secureGrpc}`,
    httpUrl,
    process: proc,
  };
}

/** istiod's root certificate as published into `namespace` (ConfigMap istio-ca-root-cert, key root-cert.pem). */
export function rootCertOf(kube: TestKube, namespace: string, istiod?: ManagedProcess): Promise<string> {
  return waitFor(
    `ConfigMap ${namespace}/istio-ca-root-cert`,
    async () => {
      try {
        const cm = await kube.get<{ data?: Record<string, string> }>(
          `/api/v1/namespaces/${namespace}/configmaps/istio-ca-root-cert`,
        );
        return cm.data?.['root-cert.pem'];
      } catch (err) {
        if (err instanceof KubeStatusError && err.status === 404) return undefined;
        throw err;
      }
    },
    { ...(istiod ? { process: istiod } : {}), timeoutMs: 60_000 },
  );
}
