// `krun runtime plan`: decides per node, from what kubelet reports (status.nodeInfo.containerRuntimeVersion, OS,
// architecture) and the node's labels and providerID, how a runtime would be installed there, or why it can't be.
// Pure: the same decision is passed to the node-side installer, which never asks the API server anything.
import type { RuntimeDefinition } from './definitions.ts';

/** How the installer configures the node's container runtime. */
export type InstallMethod =
  /** containerd 1.x: add the runtime table to config.toml in place, after a one-time backup. */
  | 'containerd-config'
  /** containerd 2.x: write a drop-in file and make sure config.toml imports it (backup first). */
  | 'containerd-dropin'
  /** CRI-O: write a file in /etc/crio/crio.conf.d/. */
  | 'crio-dropin';

/** The parts of a Node krun reads. */
export interface NodeInfo {
  readonly metadata: { readonly name: string; readonly labels?: Readonly<Record<string, string>> };
  readonly spec?: { readonly providerID?: string };
  readonly status?: {
    readonly nodeInfo?: {
      readonly containerRuntimeVersion?: string;
      readonly operatingSystem?: string;
      readonly architecture?: string;
      readonly osImage?: string;
      readonly kernelVersion?: string;
    };
    readonly runtimeHandlers?: readonly { readonly name?: string }[];
  };
}

export interface NodePlan {
  readonly node: string;
  readonly containerRuntimeVersion: string;
  readonly os: string;
  readonly architecture: string;
  readonly osImage?: string;
  /** The install method, or absent when the node is unsupported. */
  readonly method?: InstallMethod;
  /** Why the node is unsupported. */
  readonly reason?: string;
  /** The container runtime's main config file (containerd), edited with a backup. */
  readonly config?: string;
  /** The file the installer writes (drop-in methods). */
  readonly dropIn?: string;
  /** The systemd unit restarted after configuring. */
  readonly unit?: string;
  /** The node already carries the runtime's label (a previous install succeeded). */
  readonly labelled: boolean;
  /** kubelet reports the handler in status.runtimeHandlers (Kubernetes 1.30+ with a CRI that reports it). */
  readonly handlerReported: boolean;
}

export interface RuntimePlan {
  readonly apiVersion: 'krun.dev/v1alpha1';
  readonly kind: 'RuntimePlan';
  readonly runtime: string;
  readonly handler: string;
  readonly nodes: readonly NodePlan[];
}

export const CONTAINERD_CONFIG = '/etc/containerd/config.toml';

interface ParsedVersion {
  readonly family: string;
  readonly major: number;
  readonly minor: number;
  readonly suffix: string;
}

/** `containerd://1.7.27-k3s1` -> containerd 1.7, suffix `-k3s1`; undefined when not `<runtime>://<x.y…>`. */
export function parseRuntimeVersion(value: string): ParsedVersion | undefined {
  const m = /^([a-z][a-z0-9-]*):\/\/v?(\d+)\.(\d+)(?:\.\d+)?(.*)$/.exec(value);
  if (!m) return undefined;
  return { family: m[1] ?? '', major: Number(m[2]), minor: Number(m[3]), suffix: m[4] ?? '' };
}

type Decision = Pick<NodePlan, 'method' | 'reason' | 'config' | 'dropIn' | 'unit'>;

function decide(node: NodeInfo, def: RuntimeDefinition): Decision {
  const info = node.status?.nodeInfo ?? {};
  const os = info.operatingSystem ?? node.metadata.labels?.['kubernetes.io/os'] ?? '';
  const arch = info.architecture ?? node.metadata.labels?.['kubernetes.io/arch'] ?? '';
  const version = info.containerRuntimeVersion ?? '';
  if (os !== 'linux') return { reason: `${def.name} needs a Linux node (this one reports "${os || 'no OS'}")` };
  if (!def.architectures.includes(arch)) {
    return {
      reason: `no ${def.name} artifacts for ${arch || 'an unreported architecture'} (only ${def.architectures.join(', ')})`,
    };
  }
  if (!version) return { reason: 'kubelet reports no container runtime yet (status.nodeInfo.containerRuntimeVersion)' };
  const parsed = parseRuntimeVersion(version);
  if (!parsed) return { reason: `can't parse the container runtime version "${version}"` };
  const fileName = `krun-${def.name}.toml`;
  switch (parsed.family) {
    case 'containerd': {
      const provider = node.spec?.providerID ?? '';
      if (/k3s|rke2/.test(parsed.suffix) || provider.startsWith('k3s://') || provider.startsWith('rke2://')) {
        return {
          reason:
            "k3s and rke2 generate containerd's config from their own template (config.toml.tmpl); not supported yet",
        };
      }
      if (parsed.major < 1 || (parsed.major === 1 && parsed.minor < 6)) {
        return { reason: `containerd ${parsed.major}.${parsed.minor} is older than 1.6, the oldest krun supports` };
      }
      if (parsed.major === 1) return { method: 'containerd-config', config: CONTAINERD_CONFIG, unit: 'containerd' };
      if (parsed.major === 2) {
        // containerd 2.2 and later import /etc/containerd/conf.d by default; earlier 2.x need an imports entry.
        const dir = parsed.minor >= 2 ? '/etc/containerd/conf.d' : '/etc/containerd/config.d';
        return {
          method: 'containerd-dropin',
          config: CONTAINERD_CONFIG,
          dropIn: `${dir}/${fileName}`,
          unit: 'containerd',
        };
      }
      return { reason: `containerd ${parsed.major}.${parsed.minor} is newer than krun knows how to configure` };
    }
    case 'cri-o':
    case 'crio':
      return { method: 'crio-dropin', dropIn: `/etc/crio/crio.conf.d/99-krun-${def.name}.conf`, unit: 'crio' };
    case 'docker':
      return { reason: 'docker (dockershim) was removed in Kubernetes 1.24; the node needs containerd or CRI-O' };
    default:
      return { reason: `unknown container runtime "${parsed.family}" (krun knows containerd and CRI-O)` };
  }
}

/** The plan for one node (pure). */
export function planNode(node: NodeInfo, def: RuntimeDefinition): NodePlan {
  const info = node.status?.nodeInfo ?? {};
  const labels = node.metadata.labels ?? {};
  return {
    node: node.metadata.name,
    containerRuntimeVersion: info.containerRuntimeVersion ?? '',
    os: info.operatingSystem ?? labels['kubernetes.io/os'] ?? '',
    architecture: info.architecture ?? labels['kubernetes.io/arch'] ?? '',
    ...(info.osImage ? { osImage: info.osImage } : {}),
    ...decide(node, def),
    labelled: labels[def.nodeLabel.key] === def.nodeLabel.value,
    handlerReported: (node.status?.runtimeHandlers ?? []).some((h) => h.name === def.handler),
  };
}

/** The plan for every node, sorted by name (pure). */
export function planNodes(nodes: readonly NodeInfo[], def: RuntimeDefinition): RuntimePlan {
  return {
    apiVersion: 'krun.dev/v1alpha1',
    kind: 'RuntimePlan',
    runtime: def.name,
    handler: def.handler,
    nodes: nodes.map((n) => planNode(n, def)).sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
  };
}

/** What the installer will do on the node, in words: `edit /etc/containerd/config.toml (backup), restart containerd`. */
export function describeMethod(plan: NodePlan): string {
  switch (plan.method) {
    case 'containerd-config':
      return `add the runtime to ${plan.config} (backed up first), restart ${plan.unit}`;
    case 'containerd-dropin':
      return `write ${plan.dropIn}, import it from ${plan.config} (backed up first), restart ${plan.unit}`;
    case 'crio-dropin':
      return `write ${plan.dropIn}, restart ${plan.unit}`;
    case undefined:
      return `unsupported: ${plan.reason}`;
  }
}

/** Left-aligned columns separated by three spaces, as kubectl prints tables. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) => `${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('   ')}\n`)
    .join('');
}

/** The human plan: one row per node. */
export function formatPlan(plan: RuntimePlan): string {
  if (plan.nodes.length === 0) return `No nodes match; nothing to install ${plan.runtime} on.\n`;
  return table([
    ['NODE', 'RUNTIME', 'ARCH', 'INSTALL'],
    ...plan.nodes.map((n) => [
      n.node,
      n.containerRuntimeVersion || '<none>',
      n.architecture || '<none>',
      `${n.labelled ? '(installed) ' : ''}${describeMethod(n)}`,
    ]),
  ]);
}
