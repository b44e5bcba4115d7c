// What a mesh client's SNI names. Istio sidecars send `outbound_.PORT_.SUBSET_.HOST` (subset `_` when none) for
// mTLS to a Service; other clients send the host itself. The host is the Kubernetes name of the Service or of a
// ServiceEntry host: `NAME.NAMESPACE.svc.cluster.local` (or `NAME.NAMESPACE.svc`).

export interface MeshName {
  /** The full host name, `NAME.NAMESPACE.svc.cluster.local`, as registrations list it. */
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
  /** The Service port from an Istio SNI. */
  readonly port?: number;
}

const CLUSTER_SUFFIX = '.svc.cluster.local';

/** The mesh host an SNI names, or undefined when it names none (a different form, another domain). */
export function parseMeshSni(sni: string): MeshName | undefined {
  let host = sni.toLowerCase();
  let port: number | undefined;
  const istio = /^outbound_\.(\d{1,5})_\.[^.]+_?\.(.+)$/.exec(host);
  if (istio) {
    port = Number(istio[1]);
    host = istio[2] ?? '';
    if (!(port >= 1 && port <= 65535)) return undefined;
  } else if (host.startsWith('outbound_.')) {
    return undefined;
  }
  if (host.endsWith('.svc')) host = `${host}.cluster.local`;
  if (!host.endsWith(CLUSTER_SUFFIX)) return undefined;
  const parts = host.slice(0, -CLUSTER_SUFFIX.length).split('.');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { host, name: parts[0], namespace: parts[1], ...(port === undefined ? {} : { port }) };
}
