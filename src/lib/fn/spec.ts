// What to run, independent of how it was asked for (`krun fn run` flags or a `docker run` command line), and the
// settings both read from the environment, because kustomize passes krun no flags of its own.
import { isAbsolute, resolve } from 'node:path';
import { parseDuration } from '../cli/duration.ts';
import type { Env } from '../context.ts';
import { FnRuntimeError } from './errors.ts';

export interface FnMount {
  /** Absolute path on this machine: a file or a directory. */
  readonly source: string;
  /** Absolute path in the container. */
  readonly target: string;
  readonly readOnly: boolean;
}

export type PullPolicy = 'IfNotPresent' | 'Always' | 'Never';

export interface FnSpec {
  readonly image: string;
  /** Arguments after the image: the container's `args` (the image's ENTRYPOINT stays). */
  readonly args: readonly string[];
  /** `--entrypoint`: replaces the image's ENTRYPOINT (the container's `command`). */
  readonly entrypoint?: string | undefined;
  readonly workdir?: string | undefined;
  readonly env: readonly { readonly name: string; readonly value: string }[];
  /** true: a NetworkPolicy denies all traffic to and from the Pod (`--network none`). */
  readonly denyNetwork: boolean;
  readonly user: { readonly uid: number; readonly gid?: number | undefined };
  readonly mounts: readonly FnMount[];
  readonly pull: PullPolicy;
  /**
   * Send this process's stdin (`-i`); false sends an empty stdin. The Pod's stdin is always open and ended by krun:
   * a function that waits for its input cannot start writing before krun is attached.
   */
  readonly stdin: boolean;
}

/** Where and how the Pod runs: settings that are not part of a docker command line. */
export interface FnSettings {
  readonly namespace?: string | undefined;
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  /** Limit of the whole run, also the Pod's activeDeadlineSeconds. */
  readonly timeoutMs: number;
  /** How long the Pod may take to start (scheduling and image pull) before krun gives up. */
  readonly startTimeoutMs: number;
  readonly cpu: string;
  readonly memory: string;
  /** Run as this ServiceAccount, with its token mounted; unset: no token at all. */
  readonly serviceAccount?: string | undefined;
  /** Leave the Pod and its objects in place for debugging. */
  readonly keep: boolean;
  /** The image with `tar` that unpacks mounts too large for a ConfigMap. */
  readonly helperImage: string;
}

export const DEFAULT_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_START_TIMEOUT_MS = 2 * 60_000;
export const DEFAULT_CPU = '1';
export const DEFAULT_MEMORY = '512Mi';
export const DEFAULT_HELPER_IMAGE = 'busybox:1.37';
/** docker's `nobody`: Kubernetes needs numeric ids. */
export const NOBODY = 65534;

/** The settings of a `krun docker` run: environment only (KRUN_NAMESPACE, KRUN_FN_TIMEOUT, …). */
export function settingsFromEnv(env: Env): FnSettings {
  const duration = (name: string, fallback: number) => {
    const text = env[name];
    return text ? parseDuration(text) : fallback;
  };
  return {
    namespace: env.KRUN_NAMESPACE || undefined,
    kubeconfig: env.KRUN_KUBECONFIG || undefined,
    context: env.KRUN_CONTEXT || undefined,
    timeoutMs: duration('KRUN_FN_TIMEOUT', DEFAULT_TIMEOUT_MS),
    startTimeoutMs: duration('KRUN_FN_START_TIMEOUT', DEFAULT_START_TIMEOUT_MS),
    cpu: env.KRUN_FN_CPU || DEFAULT_CPU,
    memory: env.KRUN_FN_MEMORY || DEFAULT_MEMORY,
    serviceAccount: env.KRUN_FN_SERVICE_ACCOUNT || undefined,
    keep: env.KRUN_FN_KEEP === '1' || env.KRUN_FN_KEEP === 'true',
    helperImage: env.KRUN_FN_HELPER_IMAGE || DEFAULT_HELPER_IMAGE,
  };
}

/** docker's `--user`: `nobody`, `UID` or `UID:GID`, numeric (a Pod cannot resolve names in the image). */
export function parseUser(text: string): FnSpec['user'] {
  if (text === 'nobody') return { uid: NOBODY, gid: NOBODY };
  const m = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!m) {
    throw new FnRuntimeError(`--user ${text}: a Pod needs a numeric user (UID or UID:GID) or "nobody"`, {
      hints: ['--user 65534:65534', '--user nobody'],
    });
  }
  const uid = Number(m[1]);
  if (uid === 0) {
    throw new FnRuntimeError('--user 0: krun runs functions as non-root users only', {
      hints: ['drop --as-current-user when running kustomize as root, or run it as another user'],
    });
  }
  return { uid, gid: m[2] === undefined ? undefined : Number(m[2]) };
}

/** docker's `-e K=V` and `-e K` (the value of K here; left out when K is unset, as docker does). */
export function parseEnv(entries: readonly string[], env: Env): FnSpec['env'] {
  const out: { name: string; value: string }[] = [];
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (!/^[^\s=]+$/.test(name)) throw new FnRuntimeError(`-e ${entry}: not NAME=VALUE or NAME`);
    const value = eq < 0 ? env[name] : entry.slice(eq + 1);
    if (value === undefined) continue;
    const existing = out.findIndex((e) => e.name === name);
    if (existing >= 0) out.splice(existing, 1);
    out.push({ name, value });
  }
  return out;
}

/** docker's `--mount type=bind,source=S,target=T[,readonly]` (also src=, dst=, destination=, ro, readonly=true). */
export function parseMount(text: string, cwd: string): FnMount {
  let type = 'volume';
  let source: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    if (key === 'type') type = value ?? '';
    else if (key === 'source' || key === 'src') source = value;
    else if (key === 'target' || key === 'dst' || key === 'destination') target = value;
    else if (key === 'readonly' || key === 'ro') readOnly = value === undefined || value === 'true' || value === '1';
    else throw new FnRuntimeError(`--mount ${text}: unsupported option "${key}"`);
  }
  if (type !== 'bind') {
    throw new FnRuntimeError(`--mount ${text}: only type=bind mounts are supported (got type=${type})`);
  }
  if (!source || !target || !isAbsolute(target)) {
    throw new FnRuntimeError(`--mount ${text}: needs source= and an absolute target=`);
  }
  if (!readOnly) {
    throw new FnRuntimeError(`--mount ${text}: writable bind mounts are not supported`, {
      hints: [
        "a Pod can't write back to this machine's files: add readonly (kustomize mounts are read-only unless rw: true)",
      ],
    });
  }
  return { source: resolve(cwd, source), target, readOnly };
}

export function parsePull(text: string): PullPolicy {
  const policy = ({ missing: 'IfNotPresent', always: 'Always', never: 'Never' } as const)[text];
  if (!policy) throw new FnRuntimeError(`--pull ${text}: expected missing, always or never`);
  return policy;
}

export function parseNetwork(text: string): boolean {
  if (text === 'none') return true;
  if (text === 'host' || text === 'bridge' || text === 'default') return false;
  throw new FnRuntimeError(`--network ${text}: expected none, host or bridge`, {
    hints: ['none: a NetworkPolicy denies all traffic; host and bridge: the normal Pod network'],
  });
}
