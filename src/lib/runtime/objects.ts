// The objects `krun runtime install` applies (pure builders): the RuntimeClass, the ConfigMap holding the node-side
// installer script, one installer Job per node, or one DaemonSet per install profile. None holds an API token; each
// gets its nodes' decision as env.
import { createHash } from 'node:crypto';
import type { KubeObject } from '../kube/client.ts';
import type { RuntimeDefinition } from './definitions.ts';
import { type InstallerAction, installerEnv } from './installer.ts';
import type { NodePlan } from './plan.ts';

export const DEFAULT_NAMESPACE = 'kube-system';
export const SCRIPT_CONFIG_MAP = 'krun-runtime-installer';
const MANAGED = { 'app.kubernetes.io/managed-by': 'krun' };
/** The annotation on installer Jobs naming their node (node names may be longer than a label value). */
export const NODE_ANNOTATION = 'krun.dev/node';

export function runtimeClass(def: RuntimeDefinition): KubeObject {
  return {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name: def.name, labels: { ...MANAGED, 'krun.dev/runtime': def.name } },
    handler: def.handler,
    scheduling: { nodeSelector: { [def.nodeLabel.key]: def.nodeLabel.value } },
    ...(def.overhead ? { overhead: { podFixed: def.overhead } } : {}),
  };
}

export function scriptConfigMap(namespace: string, script: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: SCRIPT_CONFIG_MAP, namespace, labels: MANAGED },
    data: { 'runtime-installer.sh': script },
  };
}

/** `krun-kontain-install-node-1`, shortened with a hash when the node name is long (Job names stay label-sized). */
export function jobName(def: RuntimeDefinition, action: InstallerAction, node: string): string {
  const name = `krun-${def.name}-${action}-${node}`.replaceAll('.', '-');
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(node).digest('hex').slice(0, 8);
  return `${name.slice(0, 54).replace(/-+$/, '')}-${hash}`;
}

/** The installer container: the runtime's artifact image running the ConfigMap's script against the host's root. */
function installerContainer(def: RuntimeDefinition, plan: NodePlan, action: InstallerAction) {
  return {
    name: 'installer',
    image: def.artifacts.image,
    command: ['sh', '/krun/runtime-installer.sh', action, '/host'],
    env: Object.entries(installerEnv(def, plan)).map(([name, value]) => ({ name, value })),
    securityContext: { privileged: true },
    volumeMounts: [
      { name: 'host', mountPath: '/host' },
      { name: 'installer', mountPath: '/krun', readOnly: true },
    ],
  };
}

/** What every installer pod shares: no API token, no service links, runs on tainted nodes, the host and the script. */
const INSTALLER_POD = {
  automountServiceAccountToken: false,
  enableServiceLinks: false,
  tolerations: [{ operator: 'Exists' }],
  volumes: [
    { name: 'host', hostPath: { path: '/', type: 'Directory' } },
    { name: 'installer', configMap: { name: SCRIPT_CONFIG_MAP, defaultMode: 0o555 } },
  ],
};

export function installerJob(
  def: RuntimeDefinition,
  plan: NodePlan,
  namespace: string,
  action: InstallerAction,
): KubeObject {
  const labels = { ...MANAGED, 'krun.dev/runtime': def.name, 'krun.dev/action': action };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: jobName(def, action, plan.node),
      namespace,
      labels,
      annotations: { [NODE_ANNOTATION]: plan.node },
    },
    spec: {
      backoffLimit: 2,
      template: {
        metadata: { labels, annotations: { [NODE_ANNOTATION]: plan.node } },
        spec: {
          restartPolicy: 'Never',
          ...INSTALLER_POD,
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [plan.node] }] }],
              },
            },
          },
          containers: [installerContainer(def, plan, action)],
        },
      },
    },
  };
}

/** The container that keeps a DaemonSet's pod alive once its init container has installed the runtime. */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';

/** The pod label carrying a DaemonSet pod's profile (Job pods don't have it). */
export const PROFILE_POD_LABEL = 'krun.dev/profile';

/** The node label that puts a node in a DaemonSet's reach: `krun.dev/kontain-profile=containerd-config-1a2b3c`. */
export function profileLabel(def: RuntimeDefinition): string {
  return `krun.dev/${def.name}-profile`;
}

/**
 * A node's install profile: its method and a hash of the installer's whole environment (the decision, which holds
 * nothing node-specific). Nodes with the same profile share one DaemonSet.
 */
export function profileOf(def: RuntimeDefinition, plan: NodePlan): string {
  const env = installerEnv(def, plan);
  const hash = createHash('sha256').update(JSON.stringify(env)).digest('hex').slice(0, 6);
  return `${plan.method}-${hash}`;
}

/**
 * The DaemonSet mode (as Kontain did): an init container runs the installer, then `pause` stays, so a node that gets
 * the profile label later (a new node of a pool created with it) is configured without krun. Node affinity limits it
 * to Linux nodes of the runtime's architectures that carry the profile label; there is one DaemonSet per profile.
 */
export function installerDaemonSet(def: RuntimeDefinition, plan: NodePlan, namespace: string): KubeObject {
  const profile = profileOf(def, plan);
  const selector = { 'krun.dev/runtime': def.name, [PROFILE_POD_LABEL]: profile };
  const labels = { ...MANAGED, ...selector, 'krun.dev/action': 'install' };
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: `krun-${def.name}-${profile}`, namespace, labels },
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: { type: 'RollingUpdate' },
      template: {
        metadata: { labels },
        spec: {
          ...INSTALLER_POD,
          terminationGracePeriodSeconds: 5,
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [
                  {
                    matchExpressions: [
                      { key: profileLabel(def), operator: 'In', values: [profile] },
                      { key: 'kubernetes.io/os', operator: 'In', values: ['linux'] },
                      { key: 'kubernetes.io/arch', operator: 'In', values: [...def.architectures] },
                    ],
                  },
                ],
              },
            },
          },
          initContainers: [installerContainer(def, plan, 'install')],
          containers: [
            {
              name: 'pause',
              image: PAUSE_IMAGE,
              resources: { requests: { cpu: '1m', memory: '8Mi' }, limits: { memory: '8Mi' } },
              securityContext: {
                runAsUser: 65535,
                runAsGroup: 65535,
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  };
}

export interface JobState {
  readonly metadata?: {
    readonly name?: string;
    readonly creationTimestamp?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly status?: {
    readonly succeeded?: number;
    readonly failed?: number;
    readonly active?: number;
    readonly conditions?: readonly {
      readonly type: string;
      readonly status: string;
      readonly reason?: string;
      readonly message?: string;
    }[];
  };
}

/** A Job that has finished successfully. */
export function jobSucceeded(job: JobState): boolean {
  return (job.status?.conditions ?? []).some((c) => c.type === 'Complete' && c.status === 'True');
}

/** The `Failed` condition of a Job that has given up (backoffLimit reached, deadline exceeded), if it has. */
export function jobFailure(job: JobState): { reason?: string; message?: string } | undefined {
  return (job.status?.conditions ?? []).find((c) => c.type === 'Failed' && c.status === 'True');
}
