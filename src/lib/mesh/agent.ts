// pilot-agent (or Traffic Director's Envoy) under supervision: started in its own process group (a terminal's Ctrl-C reaches the app, and krun
// stops the agent only after the app exited), ready when its check passes, restarted with backoff if it dies
// later (the choice kubelet makes for a crashed sidecar), and stopped with SIGTERM then SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Clock, KrunContext } from '../context.ts';
import { KrunError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { RunConfig } from '../run/config.ts';

const TAIL_LINES = 40;
const MAX_BACKOFF_MS = 30_000;
/** A run this long resets the backoff. */
const HEALTHY_RUN_MS = 60_000;

export interface AgentOptions {
  /** How logs and errors name it: pilot-agent unless given. */
  readonly name?: string | undefined;
  /** What to check when it never gets ready (the control plane's address, by default istiod's). */
  readonly hints?: readonly string[] | undefined;
  readonly binary: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  /** True once the agent is usable (certificates written, or /healthz/ready). */
  readonly ready: () => Promise<boolean>;
  readonly readyDescription: string;
  /** More diagnostics when the agent never got ready (e.g. where Envoy's config dump was saved), as lines. */
  readonly diagnose?: (() => Promise<string>) | undefined;
  readonly timeoutMs: number;
  readonly graceMs: number;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Where the agent's output goes (krun's stderr: the container log). */
  readonly output?: NodeJS.WritableStream | undefined;
}

export interface RunningAgent {
  /** The last lines the agent printed, for diagnostics. */
  tail(): string[];
  readonly restarts: () => number;
  /** Stops the running process and starts a new one at once (not a crash: no backoff, no error). */
  restart(reason: string): Promise<void>;
  stop(): Promise<void>;
}

export class AgentError extends KrunError {}

/** What every supervised proxy shares: krun's start-up and termination timeouts, its clock, signal and stderr. */
export function supervision(
  config: Pick<RunConfig, 'startupTimeoutSeconds' | 'terminationGraceSeconds'>,
  ctx: KrunContext,
  log: Logger,
): Pick<AgentOptions, 'timeoutMs' | 'graceMs' | 'clock' | 'signal' | 'log' | 'output'> {
  return {
    timeoutMs: config.startupTimeoutSeconds.value * 1000,
    graceMs: config.terminationGraceSeconds.value * 1000,
    clock: ctx.clock,
    signal: ctx.signal,
    log,
    output: ctx.streams.err,
  };
}

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const name = o.name ?? 'pilot-agent';
  const lines: string[] = [];
  let restarts = 0;
  let stopping = false;
  /** Why the current process is being replaced, when krun asked for it. */
  let replacing: string | undefined;
  let child: ChildProcess | undefined;
  let exited: Promise<string> = Promise.resolve('not started');
  const stopController = new AbortController();

  const spawnOnce = () => {
    const proc = spawn(o.binary, [...o.args], {
      cwd: o.cwd,
      env: o.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      ...(o.uid !== undefined ? { uid: o.uid } : {}),
      ...(o.gid !== undefined ? { gid: o.gid } : {}),
    });
    child = proc;
    let partial = '';
    const onData = (chunk: Buffer) => {
      o.output?.write(chunk);
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (lines.length > TAIL_LINES) lines.splice(0, lines.length - TAIL_LINES);
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    exited = new Promise((resolve) => {
      proc.once('error', (err) => resolve(err.message));
      proc.once('exit', (code, sig) => resolve(sig ? `killed by ${sig}` : `exit status ${code}`));
    });
    o.log.info(`${name} started`, { pid: proc.pid, binary: o.binary });
    return proc;
  };

  const diagnostic = () => (lines.length ? `\n--- last lines of ${name} ---\n${lines.join('\n')}` : '');

  // krun exiting at once (a second signal) must not leave the agent's process group (it is detached) running.
  const killOnExit = () => {
    const proc = child;
    if (proc?.pid && proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        proc.kill('SIGKILL');
      }
    }
  };
  process.once('exit', killOnExit);

  spawnOnce();
  // Readiness: poll until ready, the agent exits, or the timeout.
  const deadline = o.clock.now().getTime() + o.timeoutMs;
  let early: string | undefined;
  void exited.then((why) => {
    early = why;
  });
  try {
    await waitUntilReady();
  } catch (err) {
    await kill();
    process.removeListener('exit', killOnExit);
    throw err;
  }
  o.log.info(`${name} ready`, { waitedFor: o.readyDescription });

  async function waitUntilReady(): Promise<void> {
    for (;;) {
      if (await o.ready()) return;
      if (early !== undefined) {
        throw new AgentError(`${name} stopped before it was ready (${early})${diagnostic()}`, {
          hints: [
            ...(o.hints ?? ['check the discovery address (XDS_ADDR), ISTIOD_SAN and the istiod root certificate']),
          ],
        });
      }
      if (o.clock.now().getTime() >= deadline) {
        // Asked while the agent (and Envoy) still run.
        const more = o.diagnose ? `\n${await o.diagnose()}` : '';
        throw new AgentError(
          `${name} was not ready after ${o.timeoutMs / 1000} s (waited for ${o.readyDescription})${diagnostic()}${more}`,
          {
            hints: [
              ...(o.hints ?? ['check that istiod is reachable at XDS_ADDR']),
              'raise KRUN_STARTUP_TIMEOUT if it needs longer',
            ],
          },
        );
      }
      await o.clock.sleep(100, o.signal);
    }
  }

  // Supervision: restart with backoff until stopped.
  const supervise = async () => {
    let backoff = 1000;
    for (;;) {
      const started = o.clock.now().getTime();
      const why = await exited;
      if (stopping) return;
      if (replacing !== undefined) {
        o.log.info(`restarting ${name}: ${replacing}`);
        replacing = undefined;
        restarts++;
        spawnOnce();
        continue;
      }
      if (o.clock.now().getTime() - started >= HEALTHY_RUN_MS) backoff = 1000;
      o.log.error(`${name} exited unexpectedly (${why}); restarting in ${backoff / 1000} s${diagnostic()}`);
      try {
        await o.clock.sleep(backoff, stopController.signal);
      } catch {
        return;
      }
      if (stopping) return;
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      restarts++;
      spawnOnce();
    }
  };
  const supervising = supervise();

  async function kill(): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const group = (sig: NodeJS.Signals) => {
      try {
        if (proc.pid) process.kill(-proc.pid, sig);
      } catch {
        proc.kill(sig);
      }
    };
    group('SIGTERM');
    const timer = setTimeout(() => group('SIGKILL'), o.graceMs);
    await exited;
    clearTimeout(timer);
  }

  return {
    tail: () => [...lines],
    restarts: () => restarts,
    async restart(reason) {
      if (stopping) return;
      replacing = reason;
      await kill();
    },
    async stop() {
      stopping = true;
      stopController.abort();
      await kill();
      await supervising;
      process.removeListener('exit', killOnExit);
      o.log.info(`${name} stopped`);
    },
  };
}
