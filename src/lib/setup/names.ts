// The names setup-namespace, doctor and the launcher agree on. The launcher derives its namespace from the Google
// service account's name (`k8s-NAMESPACE@PROJECT.iam.gserviceaccount.com`), so these are a contract, not a choice.
import { UsageError } from '../errors.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'krun';
/** The labels on every object krun's setup commands create: what `--unregister`-style cleanups select on. */
export const MANAGED_LABELS: Readonly<Record<string, string>> = { [MANAGED_BY_LABEL]: MANAGED_BY };

/** The Role and RoleBinding in the workload namespace. */
export const LAUNCHER_ROLE = 'krun-launcher';
/** The Role in istio-system that reads mesh-env, and the prefix of its per-namespace RoleBindings. */
export const MESH_ENV_READER = 'krun-mesh-env-reader';
export const ISTIO_SYSTEM = 'istio-system';
export const MESH_ENV = 'mesh-env';

/** The project role that lets the identity find GKE clusters and connect to their API servers. */
export const CLUSTER_VIEWER_ROLE = 'roles/container.clusterViewer';
/** The role operators need to reach Cloud Run services through their URL (`krun hbone`, `ssh`, …). */
export const RUN_INVOKER_ROLE = 'roles/run.invoker';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Checks a namespace name as the API server would (an RFC 1123 label), before anything is sent. */
export function checkNamespace(namespace: string): void {
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    throw new UsageError(`"${namespace}" is not a valid namespace name`, {
      hints: ['use lowercase letters, digits and "-", at most 63 characters, starting and ending alphanumeric'],
    });
  }
}

/** `k8s-NAMESPACE`: the Google service account id (6–30 characters, so namespaces of at most 26). */
export function googleAccountId(namespace: string): string {
  const id = `k8s-${namespace}`;
  if (id.length > 30 || !/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/.test(id)) {
    throw new UsageError(
      `the Google service account for namespace "${namespace}" would be "${id}", which Google doesn't accept`,
      { hints: ['Google service account ids are 6 to 30 characters: use a namespace of 2 to 26 characters'] },
    );
  }
  return id;
}

export function googleServiceAccountEmail(namespace: string, project: string): string {
  return `${googleAccountId(namespace)}@${project}.iam.gserviceaccount.com`;
}

/** The per-namespace RoleBinding in istio-system that lets the namespace's identity read mesh-env. */
export function meshEnvBindingName(namespace: string): string {
  return `${MESH_ENV_READER}-${namespace}`;
}

/** On every object `krun register SERVICE` creates: `--unregister` deletes exactly what carries it. */
export const REGISTRATION_LABEL = 'krun.dev/registration';
/** On the registered Service and ServiceEntry: the Cloud Run URL the gate tunnels their traffic to. */
export const CLOUD_RUN_URL_ANNOTATION = 'krun.dev/cloud-run-url';
/** The gate (`krun gate`, the original's hgate) in istio-system: its Deployment, ServiceAccount and external Service. */
export const GATE = 'krun-gate';
/** The gate's internal load balancer: what mesh workloads in the VPC reach (the original's internal-hgate). */
export const GATE_INTERNAL = 'krun-gate-internal';
/** The gate's raw TLS (SNI-routed) port, as in the original. */
export const GATE_PORT = 15442;

/** Checks a Cloud Run service name (which is also a valid Kubernetes Service name). */
export function checkRunServiceName(service: string): void {
  if (!/^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$/.test(service)) {
    throw new UsageError(`"${service}" is not a valid Cloud Run service name`, {
      hints: ['use lowercase letters, digits and "-", at most 49 characters, starting with a letter'],
    });
  }
}
