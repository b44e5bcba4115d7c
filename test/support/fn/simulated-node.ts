// A stand-in for kubelet and the scheduler, for one namespace of the real kube-apiserver (which has neither): it
// watches Pods, binds them to node "sim-node", runs their "image" (krun.test/fn/NAME = test/fixtures/fn/NAME.mjs)
// in the SimRuntime with the Pod's args, env and ConfigMap volumes, and writes their status through the phases
// kubelet would (ContainerCreating, Running, terminated with the exit code). Special images drive the failures:
// .../pull-error (ErrImagePull, then ImagePullBackOff), .../unschedulable (PodScheduled=False), .../ignored (no
// node ever acts on it), .../oom (the process is SIGKILLed and reported OOMKilled). Deleting a running Pod kills
// its process and confirms the deletion, as kubelet does.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { KubeStatusError, type TestKube } from '../kube.ts';
import type { SimRuntime } from './containers.ts';

export const IMAGE_PREFIX = 'krun.test/fn/';
export const NODE_NAME = 'sim-node';

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}

interface Pod {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
  };
  spec: {
    nodeName?: string;
    initContainers?: Container[];
    containers: Container[];
    volumes?: {
      name: string;
      emptyDir?: object;
      configMap?: { name: string; items?: { key: string; path: string }[] };
    }[];
  };
}

/** What the node saw when a Pod first appeared: the Pod, and which NetworkPolicies and ConfigMaps existed then. */
export interface SeenPod {
  readonly pod: Pod;
  readonly networkPolicies: readonly string[];
  readonly configMaps: readonly string[];
}

const now = () => new Date().toISOString();

export class SimulatedNode {
  readonly seen = new Map<string, SeenPod>();
  private readonly kube: TestKube;
  private readonly namespace: string;
  private readonly runtime: SimRuntime;
  private readonly handled = new Set<string>();
  private readonly roots: string[] = [];
  private stopped = false;
  private current?: { destroy(): void };
  private work: Promise<void> = Promise.resolve();
  readonly errors: Error[] = [];

  constructor(kube: TestKube, namespace: string, runtime: SimRuntime) {
    this.kube = kube;
    this.namespace = namespace;
    this.runtime = runtime;
    void this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.destroy();
    this.runtime.stopAll();
    await this.work.catch(() => {});
    for (const root of this.roots) rmSync(root, { recursive: true, force: true });
  }

  private path(name = '') {
    return `/api/v1/namespaces/${this.namespace}/pods${name ? `/${name}` : ''}`;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.watch();
      } catch (err) {
        if (!this.stopped) this.errors.push(err as Error);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private watch(): Promise<void> {
    const { server, ca, token } = this.kube.access;
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(`${this.path()}?watch=1&allowWatchBookmarks=false`, server),
        { ca, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } },
        (res) => {
          const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
          lines.on('line', (line) => {
            if (!line.trim()) return;
            const event = JSON.parse(line) as { type: string; object: Pod };
            // One event at a time, in order, as kubelet's sync loop would.
            this.work = this.work
              .then(() => this.handle(event.type, event.object))
              .catch((err: Error) => {
                // krun may delete a Pod while the node is still driving it (it fails fast on pull errors).
                const gone = err instanceof KubeStatusError && (err.status === 404 || err.status === 409);
                if (!this.stopped && !gone) this.errors.push(err);
              });
          });
          res.on('end', resolve);
          res.on('error', reject);
          lines.on('error', reject);
        },
      );
      req.on('error', (err) => (this.stopped ? resolve() : reject(err)));
      req.end();
      this.current = req;
    });
  }

  private async handle(type: string, pod: Pod): Promise<void> {
    if (this.stopped || type === 'DELETED') return;
    const { name } = pod.metadata;
    if (pod.metadata.deletionTimestamp) return this.confirmDeletion(pod);
    if (this.handled.has(name)) return;
    this.handled.add(name);
    this.seen.set(name, {
      pod,
      networkPolicies: await this.names(`/apis/networking.k8s.io/v1/namespaces/${this.namespace}/networkpolicies`),
      configMaps: await this.names(`/api/v1/namespaces/${this.namespace}/configmaps`),
    });
    const container = pod.spec.containers[0];
    if (!container?.image.startsWith(IMAGE_PREFIX)) return;
    const fn = container.image.slice(IMAGE_PREFIX.length).replace(/[:@].*$/, '');
    if (fn === 'ignored') return;
    if (fn === 'unschedulable') {
      return this.status(name, {
        phase: 'Pending',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: '0/1 nodes are available: 1 Insufficient memory.',
            lastTransitionTime: now(),
          },
        ],
      });
    }
    await this.kube.post(`${this.path(name)}/binding`, {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name },
      target: { apiVersion: 'v1', kind: 'Node', name: NODE_NAME },
    });
    const base = { name: container.name, image: container.image, imageID: '', restartCount: 0 };
    const scheduled = { type: 'PodScheduled', status: 'True', lastTransitionTime: now() };
    const waiting = (reason: string, message?: string) =>
      this.status(name, {
        phase: 'Pending',
        conditions: [scheduled],
        containerStatuses: [{ ...base, ready: false, state: { waiting: { reason, ...(message ? { message } : {}) } } }],
      });
    await waiting('ContainerCreating');
    if (fn === 'pull-error') {
      const message = `rpc error: code = NotFound desc = failed to pull and unpack image "${container.image}": not found`;
      await waiting('ErrImagePull', message);
      return waiting('ImagePullBackOff', `Back-off pulling image "${container.image}"`);
    }
    const root = mkdtempSync(join(tmpdir(), 'krun-sim-pod-'));
    this.roots.push(root);
    await this.materialise(pod, root);
    for (const init of pod.spec.initContainers ?? []) {
      const initBase = { name: init.name, image: init.image, imageID: '', restartCount: 0 };
      const startedAt = now();
      await this.status(name, {
        phase: 'Pending',
        conditions: [scheduled],
        initContainerStatuses: [{ ...initBase, ready: false, state: { running: { startedAt } } }],
        containerStatuses: [{ ...base, ready: false, state: { waiting: { reason: 'PodInitializing' } } }],
      });
      const { code } = await this.start(pod, init, root).exited;
      const exitCode = code ?? 137;
      await this.status(name, {
        ...(exitCode === 0 ? {} : { phase: 'Failed' }),
        initContainerStatuses: [
          { ...initBase, ready: exitCode === 0, state: { terminated: { exitCode, startedAt, finishedAt: now() } } },
        ],
      });
      if (exitCode !== 0) return;
    }
    const proc = this.start(pod, container, root);
    // stderr-first: kubelet reports Running only after the function's startup message is out, so it is written
    // before anyone can attach, every time (the case krun recovers from the container log).
    if (fn === 'stderr-first') await proc.firstOutput;
    const startedAt = now();
    await this.status(name, {
      phase: 'Running',
      conditions: [scheduled, { type: 'Ready', status: 'True', lastTransitionTime: startedAt }],
      containerStatuses: [{ ...base, ready: true, started: true, state: { running: { startedAt } } }],
    });
    void proc.exited.then(async ({ code }) => {
      if (this.stopped) return;
      const exitCode = fn === 'oom' ? 137 : (code ?? 137);
      const reason = fn === 'oom' ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error';
      await this.status(name, {
        phase: exitCode === 0 ? 'Succeeded' : 'Failed',
        conditions: [scheduled, { type: 'Ready', status: 'False', lastTransitionTime: now() }],
        containerStatuses: [
          { ...base, ready: false, state: { terminated: { exitCode, reason, startedAt, finishedAt: now() } } },
        ],
      }).catch((err: Error) => {
        // The Pod may already be gone (deleted while its process ended).
        if (!(err instanceof KubeStatusError && err.status === 404)) this.errors.push(err);
      });
    });
  }

  /**
   * Runs a container's image script with its command's arguments (after argv[0]) and args, its env, and
   * SIM_MOUNTS: where each of its mount paths is on this machine (the scripts resolve paths through it).
   */
  private start(pod: Pod, container: Container, root: string) {
    const script = container.image.slice(IMAGE_PREFIX.length).replace(/[:@].*$/, '');
    const mounts: Record<string, string> = {};
    for (const m of container.volumeMounts ?? []) {
      mounts[m.mountPath] = join(root, 'volumes', m.name, m.subPath ?? '');
    }
    const env: Record<string, string> = { SIM_MOUNTS: JSON.stringify(mounts) };
    for (const e of container.env ?? []) env[e.name] = e.value ?? '';
    const args = [...(container.command?.slice(1) ?? []), ...(container.args ?? [])];
    return this.runtime.start(this.namespace, pod.metadata.name, container.name, script, args, env);
  }

  /** kubelet's part of a graceful deletion: stop the container, then remove the Pod for good. */
  private async confirmDeletion(pod: Pod): Promise<void> {
    if (!pod.spec.nodeName) return;
    for (const container of this.runtime.ofPod(this.namespace, pod.metadata.name)) {
      container.kill();
      await container.exited;
    }
    // At once, as a kubelet confirms a finished Pod's deletion.
    await this.kube.request('DELETE', `${this.path(pod.metadata.name)}?gracePeriodSeconds=0`).catch(() => {});
  }

  /** kubelet's volumes: emptyDirs, and ConfigMaps with each item's content at its path. */
  private async materialise(pod: Pod, root: string): Promise<void> {
    for (const volume of pod.spec.volumes ?? []) {
      const dir = join(root, 'volumes', volume.name);
      mkdirSync(dir, { recursive: true });
      if (!volume.configMap) continue;
      const cm = await this.kube.get<{ data?: Record<string, string>; binaryData?: Record<string, string> }>(
        `/api/v1/namespaces/${this.namespace}/configmaps/${volume.configMap.name}`,
      );
      for (const item of volume.configMap.items ?? []) {
        const file = join(dir, item.path);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, cm.data?.[item.key] ?? Buffer.from(cm.binaryData?.[item.key] ?? '', 'base64'));
      }
    }
  }

  private async status(name: string, status: Record<string, unknown>): Promise<void> {
    await this.kube.request(
      'PATCH',
      `${this.path(name)}/status`,
      { status },
      {
        contentType: 'application/merge-patch+json',
      },
    );
  }

  private async names(path: string): Promise<string[]> {
    const list = await this.kube.get<{ items: { metadata: { name: string } }[] }>(path);
    return list.items.map((i) => i.metadata.name);
  }
}
