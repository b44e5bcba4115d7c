// The objects one function run creates: the Pod (non-root, no token unless asked, limits, restartPolicy Never,
// stdin held open for exactly one attach), a deny-all NetworkPolicy for `--network none`, and a ConfigMap per small
// mount (larger ones: an emptyDir and an init container that untars them from its stdin). All carry the run's
// label, so a crashed run's leftovers can be found and deleted.
import { randomBytes } from 'node:crypto';
import type { KubeObject } from '../kube/client.ts';
import { INIT_MOUNT_ROOT, mountVolume } from './mounts.ts';
import type { FnSettings, FnSpec } from './spec.ts';
import type { TarEntry } from './tar.ts';

export const CONTAINER = 'function';
/** The init container that unpacks large mounts, fed a tar archive over its attach stream. */
export const INIT_CONTAINER = 'mounts';
export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const RUN_LABEL = 'krun.dev/fn-run';

export interface FnObjects {
  readonly name: string;
  readonly pod: KubeObject;
  /** Created before the Pod, deleted after it: the Pod never runs without its policy and files. */
  readonly before: readonly KubeObject[];
  /** What INIT_CONTAINER must receive; empty when there is no init container. */
  readonly archive: readonly TarEntry[];
}

export function newRunName(): string {
  return `krun-fn-${randomBytes(5).toString('hex')}`;
}

export async function buildObjects(
  spec: FnSpec,
  settings: Pick<FnSettings, 'timeoutMs' | 'cpu' | 'memory' | 'serviceAccount' | 'helperImage'>,
  namespace: string,
  name = newRunName(),
): Promise<FnObjects> {
  const labels = { [MANAGED_BY]: 'krun', 'app.kubernetes.io/component': 'krm-function', [RUN_LABEL]: name };
  const mounts = await Promise.all(
    spec.mounts.map((m, n) => mountVolume(m, n, { name: `${name}-mount-${n}`, namespace, labels })),
  );
  const before: KubeObject[] = mounts.flatMap((m) => (m.kind === 'configMap' ? [m.configMap] : []));
  const streamed = mounts.flatMap((m) => (m.kind === 'stream' ? [m] : []));
  if (spec.denyNetwork) {
    before.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace, labels },
      // No rules: nothing in, nothing out (docker's --network none), once the network plugin enforces it.
      spec: { podSelector: { matchLabels: { [RUN_LABEL]: name } }, policyTypes: ['Ingress', 'Egress'] },
    });
  }
  const { uid, gid } = spec.user;
  const locked = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
  const initContainers =
    streamed.length === 0
      ? []
      : [
          {
            name: INIT_CONTAINER,
            image: settings.helperImage,
            command: ['tar', '-x', '-f', '-', '-C', INIT_MOUNT_ROOT],
            stdin: true,
            stdinOnce: true,
            tty: false,
            resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '128Mi' } },
            securityContext: locked,
            volumeMounts: streamed.map((m) => m.initMount),
          },
        ];
  const pod: KubeObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels, annotations: { 'krun.dev/image': spec.image } },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: Math.max(1, Math.ceil(settings.timeoutMs / 1000)),
      terminationGracePeriodSeconds: 1,
      enableServiceLinks: false,
      automountServiceAccountToken: settings.serviceAccount !== undefined,
      ...(settings.serviceAccount ? { serviceAccountName: settings.serviceAccount } : {}),
      securityContext: {
        runAsNonRoot: true,
        runAsUser: uid,
        ...(gid === undefined ? {} : { runAsGroup: gid }),
        seccompProfile: { type: 'RuntimeDefault' },
      },
      ...(initContainers.length > 0 ? { initContainers } : {}),
      containers: [
        {
          name: CONTAINER,
          image: spec.image,
          imagePullPolicy: spec.pull,
          ...(spec.entrypoint ? { command: [spec.entrypoint] } : {}),
          ...(spec.args.length > 0 ? { args: spec.args } : {}),
          ...(spec.workdir ? { workingDir: spec.workdir } : {}),
          ...(spec.env.length > 0 ? { env: spec.env } : {}),
          stdin: true,
          stdinOnce: true,
          tty: false,
          resources: {
            requests: { cpu: '100m', memory: settings.memory },
            limits: { cpu: settings.cpu, memory: settings.memory },
          },
          securityContext: locked,
          ...(mounts.length > 0 ? { volumeMounts: mounts.map((m) => m.volumeMount) } : {}),
        },
      ],
      ...(mounts.length > 0 ? { volumes: mounts.map((m) => m.volume) } : {}),
    },
  };
  return { name, pod, before, archive: streamed.flatMap((m) => m.entries) };
}
