// The supervised app: started with the Pod-like environment, sent the signal krun receives, killed after the
// grace period, and its exit status passed through (128 + N when signal N killed it, as a shell reports it).
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { CancelledError, KrunError, UsageError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';

export interface AppOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly uid?: number | undefined;
  readonly graceMs: number;
  /** Aborted by SIGTERM/SIGINT: the signal (from the CancelledError reason) is forwarded to the app. */
  readonly signal: AbortSignal;
  readonly log: Logger;
}

export interface RunningApp {
  readonly pid: number;
  /** The app's exit status, shell-style. */
  readonly exited: Promise<number>;
  /** Sends SIGTERM, then SIGKILL after the grace period; resolves with the exit status. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

export async function startApp(options: AppOptions): Promise<RunningApp> {
  const { log } = options;
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: options.env,
    stdio: 'inherit',
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err: NodeJS.ErrnoException) => {
      const hints =
        err.code === 'ENOENT'
          ? [`check that "${options.command}" exists in the image and is on PATH`]
          : err.code === 'EPERM' || err.code === 'EACCES'
            ? ['check the file is executable, and that krun runs as root when K8S_UID is set']
            : [];
      reject(
        err.code === 'ENOENT'
          ? new UsageError(`can't start the app: ${options.command}: not found`, { hints })
          : new KrunError(`can't start the app ${options.command}: ${err.message}`, { hints, cause: err }),
      );
    });
  });
  const pid = child.pid ?? -1;
  log.info('app started', { pid, command: options.command });
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      const status = exitStatus(code, signal);
      log.info('app exited', { pid, status, ...(signal ? { signal } : {}) });
      resolve(status);
    });
  });
  let stopping: Promise<number> | undefined;
  const stop = (sig: NodeJS.Signals = 'SIGTERM'): Promise<number> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      const timer = setTimeout(() => {
        log.warn(`app still running ${options.graceMs / 1000} s after ${sig}; killing it`, { pid });
        child.kill('SIGKILL');
      }, options.graceMs);
      const status = await exited;
      clearTimeout(timer);
      return status;
    })();
    return stopping;
  };
  const onAbort = () => {
    const reason = options.signal.reason;
    void stop(reason instanceof CancelledError && reason.signal ? reason.signal : 'SIGTERM');
  };
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener('abort', onAbort, { once: true });
  // A second signal exits krun at once (signalController): the app, maybe ignoring SIGTERM, must not outlive it.
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  void exited.then(() => {
    options.signal.removeEventListener('abort', onAbort);
    process.removeListener('exit', killOnExit);
  });
  return { pid, exited, stop };
}
