// Follows one Pod through its phases with a watch (re-established when the server ends it), and classifies what
// it sees the way a person would: starting, running, finished with an exit code, or stuck for a reason that will
// not go away by waiting (image pull errors, no node fits), which is reported at once instead of at the timeout.
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiStatus, type KubeClient } from '../kube/client.ts';
import { FnRuntimeError } from './errors.ts';

interface ContainerState {
  readonly waiting?: { readonly reason?: string; readonly message?: string };
  readonly running?: object;
  readonly terminated?: { readonly exitCode: number; readonly reason?: string; readonly message?: string };
}

export interface PodStatus {
  readonly metadata: { readonly resourceVersion?: string; readonly deletionTimestamp?: string };
  readonly status?: {
    readonly phase?: string;
    readonly reason?: string;
    readonly message?: string;
    readonly conditions?: readonly { type: string; status: string; reason?: string; message?: string }[];
    readonly containerStatuses?: readonly { readonly name: string; readonly state?: ContainerState }[];
    readonly initContainerStatuses?: readonly { readonly name: string; readonly state?: ContainerState }[];
  };
}

export type PodState =
  | { readonly kind: 'pending'; readonly detail: string }
  | { readonly kind: 'running' }
  | { readonly kind: 'terminated'; readonly exitCode: number; readonly reason?: string | undefined }
  | { readonly kind: 'failed'; readonly error: FnRuntimeError };

/** Waiting reasons that mean the container will not start without someone changing something. */
const STUCK = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

/** The state of `container` (an init container or a container) as far as krun can act on it. */
export function podState(pod: PodStatus, container: string, image: string): PodState {
  const status = pod.status ?? {};
  const statuses = [...(status.containerStatuses ?? []), ...(status.initContainerStatuses ?? [])];
  const state = statuses.find((c) => c.name === container)?.state;
  if (state?.terminated) return { kind: 'terminated', ...state.terminated };
  const failedInit = status.initContainerStatuses?.find((c) => (c.state?.terminated?.exitCode ?? 0) !== 0);
  if (failedInit) {
    const t = failedInit.state?.terminated;
    return {
      kind: 'failed',
      error: new FnRuntimeError(
        `init container ${failedInit.name} failed with status ${t?.exitCode}${t?.reason ? ` (${t.reason})` : ''}: the mounted files did not reach the Pod`,
      ),
    };
  }
  if (status.phase === 'Failed' || status.phase === 'Succeeded') {
    const why = [status.reason, status.message].filter(Boolean).join(': ') || `phase ${status.phase}`;
    return { kind: 'failed', error: new FnRuntimeError(`the function's Pod failed: ${why}`) };
  }
  const waiting = state?.waiting;
  if (waiting?.reason && STUCK.has(waiting.reason)) {
    const pull = waiting.reason.includes('Image');
    return {
      kind: 'failed',
      error: new FnRuntimeError(
        `${pull ? `image ${image} can't be pulled` : "the function's container can't be created"}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
        {
          hints: pull
            ? [
                'check the image name and tag',
                'private registries need imagePullSecrets on the namespace ServiceAccount',
              ]
            : [],
        },
      ),
    };
  }
  const unschedulable = status.conditions?.find(
    (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
  );
  if (unschedulable) {
    return {
      kind: 'failed',
      error: new FnRuntimeError(`no node can run the function's Pod: ${unschedulable.message ?? 'Unschedulable'}`, {
        hints: ['lower KRUN_FN_CPU / KRUN_FN_MEMORY (or --cpu/--memory)', 'check node taints and free capacity'],
      }),
    };
  }
  if (state?.running) return { kind: 'running' };
  return { kind: 'pending', detail: waiting?.reason ?? status.phase ?? 'Pending' };
}

/** The pause before watching again after a broken watch: doubles from the first value up to the second. */
const BROKEN_WATCH_PAUSE_MS = [250, 5_000] as const;

type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: PodStatus };

/**
 * Resolves with the first state `done` accepts (always including 'failed'), rejects when the Pod is deleted or
 * `signal` aborts. `onState` sees every state, for progress and the timeout message.
 */
export async function waitForPod(
  client: KubeClient,
  target: { namespace: string; name: string; container: string; image: string },
  done: (state: PodState) => boolean,
  signal: AbortSignal,
  onState: (state: PodState) => void = () => {},
): Promise<PodState> {
  const path = `/api/v1/namespaces/${target.namespace}/pods`;
  const accept = (pod: PodStatus) => {
    const state = podState(pod, target.container, target.image);
    onState(state);
    return state.kind === 'failed' || done(state) ? state : undefined;
  };
  const gone = () => new FnRuntimeError(`the function's Pod ${target.name} was deleted while krun waited for it`);
  let pause: number = BROKEN_WATCH_PAUSE_MS[0];
  for (;;) {
    let pod: PodStatus;
    try {
      pod = await client.get<PodStatus>(`${path}/${target.name}`, { signal });
    } catch (err) {
      if (apiStatus(err) === 404) throw gone();
      throw err;
    }
    const now = accept(pod);
    if (now) return now;
    const query = new URLSearchParams({
      watch: '1',
      fieldSelector: `metadata.name=${target.name}`,
      resourceVersion: pod.metadata.resourceVersion ?? '0',
      timeoutSeconds: '300',
    });
    let res: Awaited<ReturnType<KubeClient['stream']>> | undefined;
    try {
      res = await client.stream(`${path}?${query}`, { signal });
      for await (const line of createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY })) {
        if (!line.trim()) continue;
        const event = JSON.parse(line) as WatchEvent;
        if (event.type === 'DELETED') throw gone();
        if (event.type === 'ERROR') break; // e.g. 410 Gone: start over from a fresh GET
        if (event.type === 'ADDED' || event.type === 'MODIFIED') {
          const state = accept(event.object);
          if (state) return state;
        }
      }
      pause = BROKEN_WATCH_PAUSE_MS[0];
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (err instanceof FnRuntimeError || apiStatus(err) !== undefined) throw err;
      // The watch's connection broke (a proxy's timeout, a cut line, half a line): start over from a fresh GET,
      // which fails clearly if the server is really gone, after a pause that grows while it keeps breaking.
      await sleep(pause, undefined, { signal }).catch(() => Promise.reject(signal.reason));
      pause = Math.min(pause * 2, BROKEN_WATCH_PAUSE_MS[1]);
    } finally {
      res?.destroy();
    }
    if (signal.aborted) throw signal.reason;
  }
}
