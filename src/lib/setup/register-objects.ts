// Pure builders for what `krun register SERVICE` applies: the original's sni-service-template, on Istio's
// networking.istio.io/v1. Mesh workloads call `SERVICE.NAMESPACE.svc` (a Kubernetes Service whose only endpoint is
// the WorkloadEntry at the gate) or `URL_PREFIX.NAMESPACE.svc.cluster.local` (a ServiceEntry, the original's name);
// their sidecars speak Istio mTLS to the gate, whose SNI (`outbound_.PORT_._.HOST`) names the Service or
// ServiceEntry, whose annotation names the Cloud Run URL the gate tunnels to. Unlike the original, the selector is the
// registration label (no Pod labelled `app: SERVICE` becomes an endpoint by accident) and no VirtualService or
// second Service is needed: the gate routes by annotation, not by "Service name = URL prefix".
import { UsageError } from '../errors.ts';
import type { KubeObject } from '../kube/client.ts';
import { CLOUD_RUN_URL_ANNOTATION, MANAGED_LABELS, REGISTRATION_LABEL } from './names.ts';

export interface RegistrationSpec {
  /** The Cloud Run service's name: also the Kubernetes Service's. */
  readonly service: string;
  readonly namespace: string;
  /** The Cloud Run URL (`https://S-HASH-CODE.a.run.app`). */
  readonly url: string;
  /** IP or host name of the gate's load balancer. */
  readonly gateAddress: string;
  readonly gatePort: number;
  /** The Kubernetes ServiceAccount the Cloud Run service runs as (its mTLS identity). */
  readonly serviceAccount: string;
}

const NETWORKING = 'networking.istio.io/v1';
const CANONICAL_NAME = 'service.istio.io/canonical-name';
/** The original's Service ports: HTTP on 80 and 8080, gRPC on 8079. */
const PORTS = [
  { name: 'http', port: 80 },
  { name: 'http-8080', port: 8080 },
  { name: 'grpc', port: 8079 },
] as const;

/** `fortio-icq63pqnqq-uc` for `https://fortio-icq63pqnqq-uc.a.run.app`: the original's K_SERVICE. */
export function urlPrefix(url: string): string {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    throw new UsageError(`"${url}" is not a URL`, { hints: ['--url https://SERVICE-HASH-CODE.a.run.app'] });
  }
  const prefix = host.split('.')[0] ?? '';
  if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(prefix)) {
    throw new UsageError(`the Cloud Run URL ${url} doesn't start with a DNS label krun can name objects after`);
  }
  return prefix;
}

export function registrationSelector(service: string): string {
  return `${Object.entries(MANAGED_LABELS)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')},${REGISTRATION_LABEL}=${service}`;
}

function metadata(spec: RegistrationSpec, name: string, annotate = false) {
  return {
    name,
    namespace: spec.namespace,
    labels: { ...MANAGED_LABELS, [REGISTRATION_LABEL]: spec.service, [CANONICAL_NAME]: spec.service },
    ...(annotate ? { annotations: { [CLOUD_RUN_URL_ANNOTATION]: spec.url } } : {}),
  };
}

export function registrationService(spec: RegistrationSpec): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(spec, spec.service, true),
    spec: {
      ports: PORTS.map((p) => ({ name: p.name, port: p.port, protocol: 'TCP', targetPort: spec.gatePort })),
      selector: { [REGISTRATION_LABEL]: spec.service },
    },
  };
}

export function registrationWorkloadEntry(spec: RegistrationSpec): KubeObject {
  return {
    apiVersion: NETWORKING,
    kind: 'WorkloadEntry',
    metadata: metadata(spec, `${spec.service}-gate`),
    spec: {
      address: spec.gateAddress,
      labels: {
        [REGISTRATION_LABEL]: spec.service,
        [CANONICAL_NAME]: spec.service,
        'security.istio.io/tlsMode': 'istio',
      },
      ports: Object.fromEntries(PORTS.map((p) => [p.name, spec.gatePort])),
      serviceAccount: spec.serviceAccount,
    },
  };
}

export function registrationServiceEntry(spec: RegistrationSpec): KubeObject {
  const prefix = urlPrefix(spec.url);
  return {
    apiVersion: NETWORKING,
    kind: 'ServiceEntry',
    metadata: metadata(spec, prefix, true),
    spec: {
      hosts: [`${prefix}.${spec.namespace}.svc.cluster.local`],
      location: 'MESH_INTERNAL',
      ports: [{ number: 8080, name: 'http', protocol: 'HTTP', targetPort: spec.gatePort }],
      resolution: 'STATIC',
      workloadSelector: { labels: { [REGISTRATION_LABEL]: spec.service } },
    },
  };
}

export function registrationDestinationRule(spec: RegistrationSpec, name: string): KubeObject {
  return {
    apiVersion: NETWORKING,
    kind: 'DestinationRule',
    metadata: metadata(spec, name),
    spec: {
      host: `${name}.${spec.namespace}.svc.cluster.local`,
      trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
    },
  };
}

/** Every object, in the order applied (endpoints before the names that lead to them). */
export function registrationObjects(spec: RegistrationSpec): KubeObject[] {
  const prefix = urlPrefix(spec.url);
  const byPrefix =
    prefix === spec.service ? [] : [registrationServiceEntry(spec), registrationDestinationRule(spec, prefix)];
  return [
    registrationWorkloadEntry(spec),
    registrationService(spec),
    registrationDestinationRule(spec, spec.service),
    ...byPrefix,
  ];
}

/** The kinds a registration may hold, for finding (and deleting) them by label. */
export const REGISTRATION_KINDS: readonly { apiVersion: string; kind: string }[] = [
  { apiVersion: NETWORKING, kind: 'WorkloadEntry' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: NETWORKING, kind: 'ServiceEntry' },
  { apiVersion: NETWORKING, kind: 'DestinationRule' },
];
