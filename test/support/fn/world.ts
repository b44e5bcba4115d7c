// Everything a `krun fn` test runs against: the real kube-apiserver (a fresh namespace), the simulated node that
// drives that namespace's Pods, and the attach front krun talks to. Kubeconfigs point at the front.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlPlane } from '../control-plane/shared.ts';
import { TestKube } from '../kube.ts';
import { writeKubeconfig } from '../kubeconfig.ts';
import { type AttachFront, type FrontOptions, startAttachFront } from './attach-front.ts';
import { SimRuntime } from './containers.ts';
import { SimulatedNode } from './simulated-node.ts';

export interface FnWorld {
  readonly kube: TestKube;
  readonly namespace: string;
  readonly node: SimulatedNode;
  readonly front: AttachFront;
  readonly dir: string;
  /** An admin kubeconfig through the front, with the test namespace as its context's. */
  readonly kubeconfig: string;
  /** A kubeconfig through the front that authenticates with `token`. */
  kubeconfigFor(token: string, name: string): string;
  /**
   * Names of krun's objects of a collection in the namespace that nobody has deleted. A Pod krun deleted may still
   * exist, marked for deletion, until the node confirms it (asynchronously, as kubelet does): it does not count.
   */
  names(collection: 'pods' | 'configmaps' | 'networkpolicies'): Promise<string[]>;
  stop(): Promise<void>;
}

export async function fnWorld(options: FrontOptions = {}): Promise<FnWorld> {
  const plane = await controlPlane();
  const kube = new TestKube(plane.access);
  const namespace = await kube.createNamespace('fn');
  const runtime = new SimRuntime();
  const node = new SimulatedNode(kube, namespace, runtime);
  const front = await startAttachFront(plane.access, runtime, options);
  const dir = mkdtempSync(join(tmpdir(), 'krun-fn-test-'));
  const kubeconfigFor = (token: string, name: string) =>
    writeKubeconfig(join(dir, `${name}.kubeconfig`), front.access, namespace, token);
  return {
    kube,
    namespace,
    node,
    front,
    dir,
    kubeconfig: kubeconfigFor(plane.access.token, 'admin'),
    kubeconfigFor,
    names: async (collection) => {
      const group = collection === 'networkpolicies' ? '/apis/networking.k8s.io/v1' : '/api/v1';
      const list = await kube.get<{ items: { metadata: { name: string; deletionTimestamp?: string } }[] }>(
        `${group}/namespaces/${namespace}/${collection}?labelSelector=app.kubernetes.io/managed-by%3Dkrun`,
      );
      return list.items.filter((i) => !i.metadata.deletionTimestamp).map((i) => i.metadata.name);
    },
    stop: async () => {
      await node.stop();
      await front.close();
      rmSync(dir, { recursive: true, force: true });
      // A node that failed to drive a Pod makes krun's failures look like krun's fault: say so instead.
      if (node.errors.length > 0) throw new Error(`the simulated node failed: ${node.errors.map((e) => e.message)}`);
    },
  };
}
