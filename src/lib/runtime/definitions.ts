// Sandboxed runtimes krun can install as a RuntimeClass. Each is data: its handler, the image that carries its
// artifacts, where those go on the node, and its containerd and CRI-O configuration. Adding gVisor or Kata is a new
// entry here, not new code.

/** A TOML value krun writes into a runtime table. */
export type TomlValue = string | number | boolean | readonly string[];

export interface RuntimeDefinition {
  /** The RuntimeClass name pods ask for (`runtimeClassName: kontain`). */
  readonly name: string;
  readonly description: string;
  /** The CRI runtime name configured on each node; the RuntimeClass's `handler` (a DNS label). */
  readonly handler: string;
  /** The node label krun sets once a node's installer succeeded; the RuntimeClass's node selector. */
  readonly nodeLabel: { readonly key: string; readonly value: string };
  /** Architectures (`kubernetes.io/arch`) the artifacts exist for. */
  readonly architectures: readonly string[];
  readonly artifacts: {
    /** The image the installer runs in; it holds the artifacts under `dir` and a POSIX sh. */
    readonly image: string;
    readonly dir: string;
    /** Copied to the node: a path under `dir` (a trailing / copies a directory's content) -> an absolute host path. */
    readonly install: readonly { readonly from: string; readonly to: string }[];
  };
  /** The keys of containerd's `…containerd.runtimes.<handler>` table (the same in config versions 1, 2 and 3). */
  readonly containerd: Readonly<Record<string, TomlValue>>;
  /** The keys of CRI-O's `[crio.runtime.runtimes.<handler>]` table. */
  readonly crio: Readonly<Record<string, TomlValue>>;
  /** RuntimeClass `overhead.podFixed`, when the sandbox costs resources beyond the containers'. */
  readonly overhead?: Readonly<Record<string, string>>;
}

/** Kontain (kontainapp/km): KM unikernels run by its OCI runtime `krun` and the containerd shim `io.containerd.krun.v2`. */
export const KONTAIN: RuntimeDefinition = {
  name: 'kontain',
  description: 'Kontain runtime (handler krun): VM-level isolation for containers',
  handler: 'krun',
  nodeLabel: { key: 'kontain.app/kontain-runtime', value: 'true' },
  architectures: ['amd64'],
  artifacts: {
    image: 'docker.io/kontainapp/runenv-k8s-deploy:latest',
    dir: '/opt/kontain-artifacts',
    install: [
      { from: 'bin/', to: '/opt/kontain/bin/' },
      { from: 'shim/containerd-shim-krun-v2', to: '/usr/local/bin/containerd-shim-krun-v2' },
    ],
  },
  containerd: {
    runtime_type: 'io.containerd.krun.v2',
    privileged_without_host_devices: true,
    pod_annotations: ['app.kontain.*'],
  },
  crio: {
    runtime_path: '/opt/kontain/bin/krun',
    runtime_type: 'oci',
    runtime_root: '/run/krun',
  },
};

export const RUNTIMES: readonly RuntimeDefinition[] = [KONTAIN];

export function findRuntime(name: string): RuntimeDefinition | undefined {
  return RUNTIMES.find((r) => r.name === name);
}

function tomlString(value: string): string {
  return JSON.stringify(value); // a JSON string is a valid TOML basic string for the characters definitions use
}

function tomlValue(value: TomlValue): string {
  if (typeof value === 'string') return tomlString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `[${value.map(tomlString).join(', ')}]`;
}

/** `key = value` lines of a table body, in the definition's order. */
export function tomlBody(keys: Readonly<Record<string, TomlValue>>, indent = ''): string {
  return Object.entries(keys)
    .map(([k, v]) => `${indent}${k} = ${tomlValue(v)}\n`)
    .join('');
}

/** containerd's CRI plugin id for a config file version (kata's get_containerd_pluginid). */
export function containerdPluginId(configVersion: 1 | 2 | 3): string {
  if (configVersion === 1) return 'cri';
  return configVersion === 2 ? '"io.containerd.grpc.v1.cri"' : '"io.containerd.cri.v1.runtime"';
}

/** The whole runtime table for a containerd config of `configVersion` (what the node-side installer writes). */
export function containerdTable(def: RuntimeDefinition, configVersion: 1 | 2 | 3): string {
  const header = `[plugins.${containerdPluginId(configVersion)}.containerd.runtimes.${def.handler}]`;
  return `${header}\n${tomlBody(def.containerd, '  ')}`;
}

/** The CRI-O drop-in file's content. */
export function crioDropIn(def: RuntimeDefinition): string {
  return `# Written by krun runtime install ${def.name}; removed by krun runtime uninstall ${def.name}\n[crio.runtime.runtimes.${def.handler}]\n${tomlBody(def.crio)}`;
}
