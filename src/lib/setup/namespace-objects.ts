// Pure builders for every Kubernetes object `krun setup-namespace` applies: no I/O, so tests compare them exactly and
// `--dry-run=client -o yaml` prints them unchanged. The RBAC is exactly what `krun run` uses (src/lib/run/*): a
// TokenRequest for the workload's ServiceAccount, `get` on the ConfigMaps and Secrets it mounts, and `get` on
// istio-system/mesh-env. Nothing lists, watches or writes.
import type { KubeObject } from '../kube/client.ts';
import { ISTIO_SYSTEM, LAUNCHER_ROLE, MANAGED_LABELS, MESH_ENV, MESH_ENV_READER, meshEnvBindingName } from './names.ts';

export interface NamespaceSpec {
  readonly namespace: string;
  /** The Google service account the launcher authenticates as: a `User` to RBAC on GKE. */
  readonly identity: string;
  /** The workload's Kubernetes ServiceAccount (`default` unless told otherwise). */
  readonly serviceAccount: string;
  /** When given, `get` is limited to these ConfigMaps; otherwise every ConfigMap in the namespace. */
  readonly configMaps?: readonly string[];
  /** When given, `get` is limited to these Secrets; otherwise every Secret in the namespace. */
  readonly secrets?: readonly string[];
}

const RBAC = 'rbac.authorization.k8s.io';
const RBAC_V1 = `${RBAC}/v1`;

function metadata(name: string, namespace?: string) {
  return { name, ...(namespace ? { namespace } : {}), labels: { ...MANAGED_LABELS } };
}

function userSubject(identity: string) {
  return { apiGroup: RBAC, kind: 'User', name: identity };
}

function getRule(resource: string, names: readonly string[] | undefined) {
  return {
    apiGroups: [''],
    resources: [resource],
    ...(names && names.length > 0 ? { resourceNames: [...names].sort() } : {}),
    verbs: ['get'],
  };
}

export function namespaceObject(spec: NamespaceSpec): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: metadata(spec.namespace) };
}

export function serviceAccountObject(spec: NamespaceSpec): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: metadata(spec.serviceAccount, spec.namespace) };
}

export function launcherRole(spec: NamespaceSpec): KubeObject {
  return {
    apiVersion: RBAC_V1,
    kind: 'Role',
    metadata: metadata(LAUNCHER_ROLE, spec.namespace),
    rules: [
      {
        apiGroups: [''],
        resources: ['serviceaccounts/token'],
        resourceNames: [spec.serviceAccount],
        verbs: ['create'],
      },
      getRule('configmaps', spec.configMaps),
      getRule('secrets', spec.secrets),
    ],
  };
}

export function launcherRoleBinding(spec: NamespaceSpec): KubeObject {
  return {
    apiVersion: RBAC_V1,
    kind: 'RoleBinding',
    metadata: metadata(LAUNCHER_ROLE, spec.namespace),
    roleRef: { apiGroup: RBAC, kind: 'Role', name: LAUNCHER_ROLE },
    subjects: [userSubject(spec.identity)],
  };
}

/** The Role in istio-system that reads mesh-env and nothing else; shared by every namespace (and setup-cluster). */
export function meshEnvReaderRole(): KubeObject {
  return {
    apiVersion: RBAC_V1,
    kind: 'Role',
    metadata: metadata(MESH_ENV_READER, ISTIO_SYSTEM),
    rules: [getRule('configmaps', [MESH_ENV])],
  };
}

export function meshEnvReaderBinding(spec: NamespaceSpec): KubeObject {
  return {
    apiVersion: RBAC_V1,
    kind: 'RoleBinding',
    metadata: metadata(meshEnvBindingName(spec.namespace), ISTIO_SYSTEM),
    roleRef: { apiGroup: RBAC, kind: 'Role', name: MESH_ENV_READER },
    subjects: [userSubject(spec.identity)],
  };
}

/** Every object, in the order they are applied (the namespace first, the grants after what they grant). */
export function namespaceObjects(spec: NamespaceSpec): KubeObject[] {
  return [
    namespaceObject(spec),
    serviceAccountObject(spec),
    launcherRole(spec),
    launcherRoleBinding(spec),
    meshEnvReaderRole(),
    meshEnvReaderBinding(spec),
  ];
}
