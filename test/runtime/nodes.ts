// Node objects for the runtime tests: made by the test on the shared apiserver (no kubelet ever reports), each
// carrying a label unique to the test so other test files' Nodes never show up in its plan.
import { randomBytes } from 'node:crypto';
import type { NodeInfo } from '../../src/lib/runtime/plan.ts';
import type { TestKube } from '../support/kube.ts';

export interface NodeSeed {
  readonly name: string;
  readonly runtime: string;
  readonly arch?: string;
  readonly os?: string;
  readonly providerID?: string;
  readonly labels?: Record<string, string>;
}

/** The Node object kubelet would have reported (pure; for unit tests). */
export function nodeObject(seed: NodeSeed): NodeInfo {
  return {
    metadata: {
      name: seed.name,
      labels: {
        'kubernetes.io/os': seed.os ?? 'linux',
        'kubernetes.io/arch': seed.arch ?? 'amd64',
        ...seed.labels,
      },
    },
    ...(seed.providerID ? { spec: { providerID: seed.providerID } } : {}),
    status: {
      nodeInfo: {
        containerRuntimeVersion: seed.runtime,
        operatingSystem: seed.os ?? 'linux',
        architecture: seed.arch ?? 'amd64',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        kernelVersion: '6.1.0-28-amd64',
      },
    },
  };
}

export interface NodeSet {
  /** The label every Node of this set carries: pass it as `-l`. */
  readonly selector: string;
  /** The Nodes' names, in `seeds` order. */
  readonly names: readonly string[];
  remove(): Promise<void>;
}

const EMPTY_NODE_INFO = {
  machineID: '',
  systemUUID: '',
  bootID: '',
  kernelVersion: '',
  osImage: '',
  containerRuntimeVersion: '',
  kubeletVersion: 'v1.36.3',
  kubeProxyVersion: '',
  operatingSystem: '',
  architecture: '',
};

/** Creates the Nodes (names made unique with a random suffix) and sets their status.nodeInfo. */
export async function createNodes(kube: TestKube, seeds: readonly NodeSeed[]): Promise<NodeSet> {
  const id = randomBytes(4).toString('hex');
  const selector = `krun-test/runtime-set=${id}`;
  const names: string[] = [];
  for (const seed of seeds) {
    const object = nodeObject({
      ...seed,
      name: `${seed.name}-${id}`,
      labels: { ...seed.labels, 'krun-test/runtime-set': id },
    });
    const { status, ...rest } = object;
    await kube.post('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', ...rest });
    await kube.request(
      'PATCH',
      `/api/v1/nodes/${object.metadata.name}/status`,
      {
        status: { nodeInfo: { ...EMPTY_NODE_INFO, ...status?.nodeInfo } },
      },
      { contentType: 'application/merge-patch+json' },
    );
    names.push(object.metadata.name);
  }
  return {
    selector,
    names,
    remove: async () => {
      for (const name of names) await kube.request('DELETE', `/api/v1/nodes/${name}`);
    },
  };
}
