// One function run: create the Pod (after its NetworkPolicy and ConfigMaps), wait for it to run, attach, stream
// stdin in and stdout/stderr out, read the exit code from the Pod's status, and delete everything — on success,
// failure, timeout and Ctrl-C alike.
import { Readable } from 'node:stream';
import { formatDuration } from '../cli/duration.ts';
import type { KrunContext } from '../context.ts';
import { PermissionError } from '../errors.ts';
import { apiStatus, collectionPath, KubeClient, type KubeObject, objectPath } from '../kube/client.ts';
import { findCluster } from '../run/cluster.ts';
import { attach, write } from './attach.ts';
import { FnOomError, FnRuntimeError } from './errors.ts';
import { buildObjects, CONTAINER, INIT_CONTAINER } from './objects.ts';
import { type PodState, waitForPod } from './pod-watch.ts';
import type { FnSettings, FnSpec } from './spec.ts';
import { type TarEntry, tarStream } from './tar.ts';

/** How much of the container log krun reads to recover what was written before it attached. */
const EARLY_LOG_BYTES = 1024 * 1024;

async function connect(settings: FnSettings, ctx: KrunContext): Promise<KubeClient> {
  const connection = await findCluster(
    {
      kubeconfig: {
        value: settings.kubeconfig ?? ctx.env.KUBECONFIG,
        source: settings.kubeconfig ? '--kubeconfig' : 'KUBECONFIG',
      },
      context: { value: settings.context, source: '--context' },
    },
    ctx.env,
  );
  if (!connection) {
    throw new FnRuntimeError('no cluster to run the function in: no kubeconfig and not inside a Pod', {
      hints: ['export KUBECONFIG=PATH', '--kubeconfig PATH'],
    });
  }
  return new KubeClient(connection);
}

function rbacHint(err: unknown, namespace: string): unknown {
  if (!(err instanceof PermissionError)) return err;
  return new PermissionError(err.message, {
    hints: [
      `krun fn rbac -n ${namespace} --service-account NAMESPACE:NAME --apply   # as a cluster admin`,
      ...err.hints.filter((h) => !h.includes('setup-namespace')),
    ],
  });
}

/** Runs the function and returns its exit code; throws FnRuntimeError (125) when it could not be run. */
export async function runFunction(spec: FnSpec, settings: FnSettings, ctx: KrunContext): Promise<number> {
  const client = await connect(settings, ctx);
  const namespace = settings.namespace ?? client.connection.namespace ?? 'default';
  const objects = await buildObjects(spec, settings, namespace);
  const log = ctx.log.with({ pod: objects.name, namespace });
  const timeout = AbortSignal.timeout(settings.timeoutMs);
  const signal = AbortSignal.any([ctx.signal, timeout]);
  const created: KubeObject[] = [];
  try {
    for (const object of [...objects.before, objects.pod]) {
      // Remembered before the answer: a run interrupted after the server created it must still delete it. Only a
      // refusal from the server (an API status) means it surely was not created.
      created.push(object);
      await client
        .post(collectionPath(object.apiVersion, object.kind, namespace), object, { signal })
        .catch((err: unknown) => {
          if (apiStatus(err) !== undefined) created.pop();
          throw err;
        });
    }
    log.debug('created the function Pod', { image: spec.image });
    const target = { namespace, name: objects.name, container: CONTAINER, image: spec.image };
    if (objects.archive.length > 0) {
      const init = { ...target, container: INIT_CONTAINER, image: settings.helperImage };
      await copyMounts(client, init, objects.archive, settings, ctx, signal);
    }
    return await runPod(client, spec, settings, target, ctx, signal);
  } catch (err) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (timeout.aborted) {
      throw new FnRuntimeError(`the function did not finish within ${formatDuration(settings.timeoutMs)}`, {
        hints: ['raise the limit: KRUN_FN_TIMEOUT=10m (krun fn run --timeout 10m)'],
      });
    }
    throw rbacHint(err, namespace);
  } finally {
    if (!settings.keep) await cleanup(client, created, ctx);
    else if (created.length > 0) log.info('kept the function Pod (KRUN_FN_KEEP)');
    client.close();
  }
}

type Target = { namespace: string; name: string; container: string; image: string };

/** Waits until `target.container` runs or ends, failing fast on what won't resolve itself, and at the timeout. */
async function waitToStart(
  client: KubeClient,
  target: Target,
  settings: FnSettings,
  signal: AbortSignal,
): Promise<PodState> {
  let last: PodState | undefined;
  const startTimeout = AbortSignal.timeout(settings.startTimeoutMs);
  try {
    return await waitForPod(
      client,
      target,
      (s) => s.kind !== 'pending',
      AbortSignal.any([signal, startTimeout]),
      (s) => {
        last = s;
      },
    );
  } catch (err) {
    if (startTimeout.aborted && !signal.aborted) {
      const detail = last?.kind === 'pending' ? ` (still ${last.detail})` : '';
      throw new FnRuntimeError(
        `the function's Pod did not start within ${formatDuration(settings.startTimeoutMs)}${detail}`,
        {
          hints: [
            'raise the limit: KRUN_FN_START_TIMEOUT=5m (krun fn run --start-timeout 5m)',
            `kubectl describe pod -n ${target.namespace} ${target.name}   # with KRUN_FN_KEEP=1`,
          ],
        },
      );
    }
    throw err;
  }
}

/** Large mounts: a tar archive over the init container's attach stream, unpacked by `tar -x` into the emptyDirs. */
async function copyMounts(
  client: KubeClient,
  init: Target,
  archive: readonly TarEntry[],
  settings: FnSettings,
  ctx: KrunContext,
  signal: AbortSignal,
): Promise<void> {
  const started = await waitToStart(client, init, settings, signal);
  if (started.kind === 'failed') throw started.error;
  if (started.kind === 'running') {
    ctx.log.debug('copying the mounted files into the Pod', { pod: init.name, entries: archive.length });
    await attach(client, {
      namespace: init.namespace,
      pod: init.name,
      container: init.container,
      stdin: Readable.from(tarStream(archive)),
      stdout: ctx.streams.err,
      stderr: ctx.streams.err,
      signal,
    });
  }
  const ended = await waitForPod(client, init, (s) => s.kind === 'terminated', signal);
  if (ended.kind === 'failed') throw ended.error;
  if (ended.kind === 'terminated' && ended.exitCode !== 0) {
    throw new FnRuntimeError(`unpacking the mounted files in the Pod failed with status ${ended.exitCode}`);
  }
}

async function runPod(
  client: KubeClient,
  spec: FnSpec,
  settings: FnSettings,
  target: Target,
  ctx: KrunContext,
  signal: AbortSignal,
): Promise<number> {
  const log = ctx.log.with({ pod: target.name, namespace: target.namespace });
  const started = await waitToStart(client, target, settings, signal);
  if (started.kind === 'failed') throw started.error;
  if (started.kind === 'terminated') {
    // It ended before krun could attach (it did not wait for stdin): only its merged log is left.
    const text = await containerLog(client, target, signal).catch(() => undefined);
    if (text) await write(ctx.streams.err, text);
    const err = exitError(started, spec);
    if (err) throw err;
    if (started.exitCode !== 0) return started.exitCode;
    throw new FnRuntimeError('the function exited before krun could attach to it; its output is lost', {
      hints: ['a KRM function reads its ResourceList from stdin before it writes its output'],
    });
  }
  log.debug('the function is running; attaching');
  const { protocol } = await attach(client, {
    namespace: target.namespace,
    pod: target.name,
    container: target.container,
    stdin: spec.stdin ? ctx.streams.in : Readable.from([]),
    stdout: ctx.streams.out,
    stderr: ctx.streams.err,
    signal,
    onOpen: (p) => log.debug('attached', { protocol: p }),
    earlierOutput: () =>
      containerLog(client, target, signal).catch((err: Error) => {
        log.warn("can't read the container log: output written before krun attached is lost", {
          error: err.message,
        });
        return undefined;
      }),
  });
  const ended = await waitForPod(client, target, (s) => s.kind === 'terminated', signal);
  if (ended.kind === 'failed') throw ended.error;
  log.debug('the function ended', { protocol, ...ended });
  const err = exitError(ended, spec);
  if (err) throw err;
  return ended.kind === 'terminated' ? ended.exitCode : 0;
}

function exitError(state: PodState, spec: FnSpec): Error | undefined {
  if (state.kind !== 'terminated') return undefined;
  if (state.reason === 'OOMKilled') {
    return new FnOomError(`the function ${spec.image} was killed for using more memory than its limit (OOMKilled)`, {
      hints: ['raise the limit: KRUN_FN_MEMORY=1Gi (krun fn run --memory 1Gi)'],
    });
  }
  return undefined;
}

async function containerLog(
  client: KubeClient,
  target: { namespace: string; name: string; container: string },
  signal: AbortSignal,
): Promise<Buffer> {
  const path = `/api/v1/namespaces/${target.namespace}/pods/${target.name}/log?container=${target.container}&limitBytes=${EARLY_LOG_BYTES}`;
  const res = await client.stream(path, { signal });
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Deletes what the run created, newest first, even when the run was interrupted (with its own deadline). */
async function cleanup(client: KubeClient, created: KubeObject[], ctx: KrunContext): Promise<void> {
  const signal = AbortSignal.timeout(15_000);
  for (const object of created.reverse()) {
    try {
      await client.delete(objectPath(object), { signal });
    } catch (err) {
      ctx.log.warn(`couldn't delete ${object.kind} ${object.metadata.name}`, { error: (err as Error).message });
    }
  }
}
