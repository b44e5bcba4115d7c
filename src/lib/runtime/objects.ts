// The objects `krun runtime install` applies (pure builders): the RuntimeClass, the ConfigMap holding the node-side
// installer script, and one installer Job per node. Jobs hold no API token and get their node's decision as env.
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

export function installerJob(
  def: RuntimeDefinition,
  plan: NodePlan,
  namespace: string,
  action: InstallerAction,
): KubeObject {
  const labels = { ...MANAGED, 'krun.dev/runtime': def.name, 'krun.dev/action': action };
  const env = installerEnv(def, plan);
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
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [plan.node] }] }],
              },
            },
          },
          tolerations: [{ operator: 'Exists' }],
          containers: [
            {
              name: 'installer',
              image: def.artifacts.image,
              command: ['sh', '/krun/runtime-installer.sh', action, '/host'],
              env: Object.entries(env).map(([name, value]) => ({ name, value })),
              securityContext: { privileged: true },
              volumeMounts: [
                { name: 'host', mountPath: '/host' },
                { name: 'installer', mountPath: '/krun', readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'host', hostPath: { path: '/', type: 'Directory' } },
            { name: 'installer', configMap: { name: SCRIPT_CONFIG_MAP, defaultMode: 0o555 } },
          ],
        },
      },
    },
  };
}

export interface JobState {
  readonly status?: {
    readonly succeeded?: number;
    readonly failed?: number;
    readonly conditions?: readonly { readonly type: string; readonly status: string }[];
  };
}

/** A Job that has finished successfully. */
export function jobSucceeded(job: JobState): boolean {
  return (job.status?.conditions ?? []).some((c) => c.type === 'Complete' && c.status === 'True');
}
