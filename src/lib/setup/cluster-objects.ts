// What `krun setup-cluster` applies, built without I/O: the gate (templates/gate.yaml), mesh-env's read access for
// every authenticated identity (the shared Role of namespace-objects.ts, bound by templates/mesh-env-rbac.yaml), and
// istio-system/mesh-env with the keys of the original's gate that krun knows.
import { DEFAULT_ADMIN_PORT } from '../gate/defaults.ts';
import type { KubeObject } from '../kube/client.ts';
import { GATE_PORT, ISTIO_SYSTEM, MANAGED_LABELS, MESH_ENV } from './names.ts';
import { meshEnvReaderRole } from './namespace-objects.ts';
import { loadTemplate } from './templates.ts';

export interface ClusterSpec {
  /** The container image with krun in it; the Deployment runs `krun gate`. */
  readonly image: string;
  /** Extra flags for `krun gate`. */
  readonly gateArgs: readonly string[];
  readonly gatePort: number;
  /** mesh-env's keys (PROJECT_ID, …): only those known. */
  readonly meshEnv: Readonly<Record<string, string>>;
}

/** The mesh-env keys setup-cluster writes, in the original's names (§7 of the reference). */
export const MESH_ENV_WRITTEN = [
  'PROJECT_ID',
  'PROJECT_NUMBER',
  'CLUSTER_NAME',
  'CLUSTER_LOCATION',
  'CAROOT_ISTIOD',
  'MCON_ADDR',
  'IMCON_ADDR',
] as const;

/** The gate's arguments: `krun gate`, its port unless the default, then the operator's flags. */
export function gateArgs(spec: Pick<ClusterSpec, 'gateArgs' | 'gatePort'>): string[] {
  return ['gate', ...(spec.gatePort === GATE_PORT ? [] : ['--port', String(spec.gatePort)]), ...spec.gateArgs];
}

export function meshEnvObject(values: Readonly<Record<string, string>>): KubeObject {
  const data = Object.fromEntries(MESH_ENV_WRITTEN.filter((k) => values[k]).map((k) => [k, values[k] as string]));
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: MESH_ENV, namespace: ISTIO_SYSTEM, labels: { ...MANAGED_LABELS } },
    data,
  };
}

/** Every object, in the order applied: the gate's identity and grants before it, mesh-env's grant before mesh-env. */
export async function clusterObjects(spec: ClusterSpec): Promise<KubeObject[]> {
  const gate = await loadTemplate('gate.yaml', {
    IMAGE: spec.image,
    GATE_ARGS: gateArgs(spec),
    GATE_PORT: spec.gatePort,
    ADMIN_PORT: DEFAULT_ADMIN_PORT,
  });
  return [...gate, meshEnvReaderRole(), ...(await loadTemplate('mesh-env-rbac.yaml', {})), meshEnvObject(spec.meshEnv)];
}
