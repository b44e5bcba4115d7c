// What became of the installers, read from outside the cluster: each node's installer Jobs (install or revert) and
// DaemonSet pod, the node label changes krun makes from them, and waiting for them. Shared by install, uninstall and
// status. The installers themselves never talk to the API server.

import { formatDuration } from '../cli/duration.ts';
import type { KrunContext } from '../context.ts';
import { KrunError } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { RuntimeDefinition } from './definitions.ts';
import type { InstallerAction } from './installer.ts';
import { type JobState, jobFailure, jobSucceeded, NODE_ANNOTATION, PROFILE_POD_LABEL } from './objects.ts';

export type InstallerPhase = 'running' | 'succeeded' | 'failed';

/** One installer run on one node: a Job, or the pod a DaemonSet made there. */
export interface InstallerResult {
  readonly action: InstallerAction;
  /** `job/krun-kontain-install-node-1`, `pod/krun-kontain-crio-dropin-1a2b3c-x7k2p`. */
  readonly object: string;
  readonly phase: InstallerPhase;
  /** Why it failed, or how many attempts failed so far. */
  readonly message?: string;
  /** When the Job or pod was created (RFC 3339): the latest is the node's last installer. */
  readonly created?: string;
}

export interface PodState {
  readonly metadata: {
    readonly name: string;
    readonly creationTimestamp?: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly spec?: { readonly nodeName?: string };
  readonly status?: {
    readonly initContainerStatuses?: readonly {
      readonly name: string;
      readonly state?: { readonly terminated?: { readonly exitCode: number; readonly reason?: string } };
      readonly lastState?: { readonly terminated?: { readonly exitCode: number; readonly reason?: string } };
    }[];
  };
}

type NamedJob = JobState & { readonly metadata: { readonly name: string } };

function created(time: string | undefined) {
  return time ? { created: time } : {};
}

export function jobResult(job: NamedJob): InstallerResult {
  const action: InstallerAction = job.metadata.labels?.['krun.dev/action'] === 'revert' ? 'revert' : 'install';
  const base = { action, object: `job/${job.metadata.name}`, ...created(job.metadata.creationTimestamp) };
  if (jobSucceeded(job)) return { ...base, phase: 'succeeded' };
  const failure = jobFailure(job);
  if (failure) return { ...base, phase: 'failed', message: failure.message || failure.reason || 'the Job failed' };
  const failed = job.status?.failed ?? 0;
  return { ...base, phase: 'running', ...(failed ? { message: `${failed} failed` } : {}) };
}

/** A DaemonSet pod's installer is its init container: done once it exited 0; failed (and retrying) once it didn't. */
export function podResult(pod: PodState): InstallerResult {
  const base = {
    action: 'install' as const,
    object: `pod/${pod.metadata.name}`,
    ...created(pod.metadata.creationTimestamp),
  };
  const installer = pod.status?.initContainerStatuses?.find((s) => s.name === 'installer');
  const now = installer?.state?.terminated;
  if (now?.exitCode === 0) return { ...base, phase: 'succeeded' };
  const last = now ?? installer?.lastState?.terminated;
  if (last) return { ...base, phase: 'failed', message: `the installer exited with ${last.exitCode}; retrying` };
  return { ...base, phase: 'running' };
}

function query(labelSelector: string, fieldSelector?: string): string {
  const field = fieldSelector ? `&fieldSelector=${encodeURIComponent(fieldSelector)}` : '';
  return `?labelSelector=${encodeURIComponent(labelSelector)}${field}`;
}

/** Every installer Job and DaemonSet pod of the runtime in `namespace`, by node, oldest first. */
export async function installerResults(
  client: KubeClient,
  def: RuntimeDefinition,
  namespace: string,
  signal: AbortSignal,
): Promise<Map<string, InstallerResult[]>> {
  const ns = encodeURIComponent(namespace);
  const [jobs, pods] = await Promise.all([
    client.get<{ items: NamedJob[] }>(`/apis/batch/v1/namespaces/${ns}/jobs${query(`krun.dev/runtime=${def.name}`)}`, {
      signal,
    }),
    client.get<{ items: PodState[] }>(
      `/api/v1/namespaces/${ns}/pods${query(`krun.dev/runtime=${def.name},${PROFILE_POD_LABEL}`)}`,
      { signal },
    ),
  ]);
  const byNode = new Map<string, InstallerResult[]>();
  const add = (node: string | undefined, result: InstallerResult) => {
    if (node) byNode.set(node, [...(byNode.get(node) ?? []), result]);
  };
  for (const job of jobs.items) add(job.metadata.annotations?.[NODE_ANNOTATION], jobResult(job));
  for (const pod of pods.items) add(pod.spec?.nodeName, podResult(pod));
  for (const results of byNode.values()) results.sort((a, b) => (a.created ?? '').localeCompare(b.created ?? ''));
  return byNode;
}

/** The latest of a node's installers. */
export function lastResult(results: readonly InstallerResult[] | undefined): InstallerResult | undefined {
  return results?.at(-1);
}

/** The installer pod a DaemonSet of `profile` runs on `node`, if it has one yet. */
export async function daemonPodResult(
  client: KubeClient,
  def: RuntimeDefinition,
  namespace: string,
  profile: string,
  node: string,
  signal: AbortSignal,
): Promise<InstallerResult | undefined> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods${query(
    `krun.dev/runtime=${def.name},${PROFILE_POD_LABEL}=${profile}`,
    `spec.nodeName=${node}`,
  )}`;
  const pods = await client.get<{ items: PodState[] }>(path, { signal });
  return lastResult(pods.items.map(podResult).sort((a, b) => (a.created ?? '').localeCompare(b.created ?? '')));
}

/** Sets (a string) or removes (null) labels of a node; `dryRun` has the API server only validate. */
export async function patchNodeLabels(
  client: KubeClient,
  node: string,
  labels: Readonly<Record<string, string | null>>,
  signal: AbortSignal,
  dryRun = false,
): Promise<void> {
  await client.request(
    'PATCH',
    `/api/v1/nodes/${encodeURIComponent(node)}${dryRun ? '?dryRun=All' : ''}`,
    { metadata: { labels } },
    { signal, contentType: 'application/merge-patch+json' },
  );
}

/** Where `--wait` gives up. */
export interface Deadline {
  /** Epoch milliseconds. */
  readonly at: number;
  readonly timeoutMs: number;
}

const POLL_MS = 2000;

/**
 * Checks until the check says it's settled, sleeping between checks (Ctrl-C ends the sleep). Without a deadline it
 * checks once. Past the deadline it throws a KrunError naming what it waited for.
 */
export async function settle<T extends { readonly settled: boolean }>(
  check: () => Promise<T>,
  deadline: Deadline | undefined,
  what: { readonly waitingFor: string; readonly hints: readonly string[] },
  ctx: KrunContext,
  signal: AbortSignal,
): Promise<T> {
  for (;;) {
    const result = await check();
    if (!deadline || result.settled) return result;
    const left = deadline.at - ctx.clock.now().getTime();
    if (left <= 0) {
      throw new KrunError(`timed out after ${formatDuration(deadline.timeoutMs)} waiting for ${what.waitingFor}`, {
        hints: what.hints,
      });
    }
    await ctx.clock.sleep(Math.min(POLL_MS, left), signal);
  }
}
