// Where mesh workloads reach the gate: the load-balancer address of the gate's Services in istio-system, or what
// istio-system/mesh-env says (IMCON_ADDR for the internal load balancer, MCON_ADDR for the external one, as the
// original's gate wrote them). The internal address wins: mesh workloads are inside the VPC.
import { NotFoundError } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import { GATE, GATE_INTERNAL, ISTIO_SYSTEM, MESH_ENV } from './names.ts';

export interface LoadBalanced {
  readonly status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

/** The first load-balancer ingress address of a Service, if it has one yet. */
export function loadBalancerAddress(service: LoadBalanced | undefined): string | undefined {
  const ingress = service?.status?.loadBalancer?.ingress?.[0];
  return ingress?.ip || ingress?.hostname || undefined;
}

/** What the cluster says about the gate's addresses, and why each source gave none. */
export interface GateFacts {
  /** The internal and external load balancers' addresses. */
  readonly internal?: string | undefined;
  readonly external?: string | undefined;
  /** mesh-env's keys. */
  readonly meshEnv: Readonly<Record<string, string>>;
  /** "service istio-system/krun-gate-internal not found", … */
  readonly missing: readonly string[];
}

export interface GateAddress {
  readonly address: string;
  /** "service istio-system/krun-gate-internal", "configmap istio-system/mesh-env IMCON_ADDR". */
  readonly source: string;
}

export async function readGateFacts(client: KubeClient, signal?: AbortSignal): Promise<GateFacts> {
  const req = signal ? { signal } : {};
  const missing: string[] = [];
  const lb = async (name: string) => {
    const service = await client.find<LoadBalanced>(`/api/v1/namespaces/${ISTIO_SYSTEM}/services/${name}`, req);
    const address = loadBalancerAddress(service);
    if (!service) missing.push(`service ${ISTIO_SYSTEM}/${name} not found`);
    else if (!address) missing.push(`service ${ISTIO_SYSTEM}/${name} has no load-balancer address yet`);
    return address;
  };
  const internal = await lb(GATE_INTERNAL);
  const external = await lb(GATE);
  const cm = await client.find<{ data?: Record<string, string> }>(
    `/api/v1/namespaces/${ISTIO_SYSTEM}/configmaps/${MESH_ENV}`,
    req,
  );
  if (!cm) missing.push(`configmap ${ISTIO_SYSTEM}/${MESH_ENV} not found`);
  else if (!cm.data?.IMCON_ADDR && !cm.data?.MCON_ADDR) {
    missing.push(`configmap ${ISTIO_SYSTEM}/${MESH_ENV} has no IMCON_ADDR or MCON_ADDR`);
  }
  return { internal, external, meshEnv: cm?.data ?? {}, missing };
}

/** The address a registration points at, in order of preference; a NotFoundError naming what's missing otherwise. */
export function pickGateAddress(facts: GateFacts): GateAddress {
  const candidates: [string | undefined, string][] = [
    [facts.internal, `service ${ISTIO_SYSTEM}/${GATE_INTERNAL}`],
    [facts.meshEnv.IMCON_ADDR, `configmap ${ISTIO_SYSTEM}/${MESH_ENV} IMCON_ADDR`],
    [facts.external, `service ${ISTIO_SYSTEM}/${GATE}`],
    [facts.meshEnv.MCON_ADDR, `configmap ${ISTIO_SYSTEM}/${MESH_ENV} MCON_ADDR`],
  ];
  for (const [address, source] of candidates) if (address) return { address, source };
  throw new NotFoundError(`no gate address in the cluster: ${facts.missing.join('; ')}`, {
    hints: ['krun setup-cluster (and wait for the load balancer)', '--gate-address ADDRESS'],
  });
}
