// What every service gets instead of reaching for process globals: streams, the environment, a clock, a logger,
// and one abort signal for the whole invocation. Commands build it once; tests build their own.
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError } from './errors.ts';
import { createLogger, type Level, type LogFormat, type Logger } from './log/logger.ts';

export type TtyReadable = Readable & { isTTY?: boolean };
export type TtyWritable = Writable & { isTTY?: boolean };

export interface Streams {
  readonly in: TtyReadable;
  readonly out: TtyWritable;
  readonly err: TtyWritable;
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface Clock {
  now(): Date;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    sleep(Math.max(0, ms), undefined, signal ? { signal } : {}).catch((err: unknown) => {
      // timers/promises rejects with an AbortError; the contract is the signal's reason (a CancelledError: exit 130).
      throw signal?.aborted ? signal.reason : err;
    }),
};

export interface KrunContext {
  readonly streams: Streams;
  readonly env: Env;
  readonly cwd: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Aborted on SIGINT/SIGTERM; every long operation listens to it. */
  readonly signal: AbortSignal;
  /** Computed once: a person is at a terminal, so prompting is allowed. Never true without a TTY or in CI. */
  readonly interactive: boolean;
}

export function isInteractive(streams: Streams, env: Env): boolean {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI.toLowerCase() !== 'false';
  return !ci && streams.in.isTTY === true && streams.err.isTTY === true;
}

export interface ContextOptions {
  readonly streams: Streams;
  readonly env: Env;
  readonly cwd: string;
  readonly signal: AbortSignal;
  readonly clock?: Clock;
  readonly logLevel?: Level;
  readonly logFormat?: LogFormat;
}

export function createContext(options: ContextOptions): KrunContext {
  const clock = options.clock ?? systemClock;
  const format = options.logFormat ?? (options.streams.err.isTTY === true ? 'human' : 'json');
  return {
    streams: options.streams,
    env: options.env,
    cwd: options.cwd,
    clock,
    signal: options.signal,
    interactive: isInteractive(options.streams, options.env),
    log: createLogger({
      stream: options.streams.err,
      format,
      level: options.logLevel ?? 'info',
      now: () => clock.now(),
    }),
  };
}

/**
 * An AbortController aborted by the first SIGINT or SIGTERM, with a CancelledError naming the signal as reason.
 * A second signal while the first is being handled exits at once with 130: a stuck shutdown never traps the user.
 */
export function signalController(proc: Pick<NodeJS.Process, 'once' | 'removeListener' | 'exit'> = process): {
  controller: AbortController;
  dispose(): void;
} {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) proc.exit(130);
    controller.abort(new CancelledError(`interrupted by ${signal}`, signal));
    proc.once(signal, onSignal);
  };
  proc.once('SIGINT', onSignal);
  proc.once('SIGTERM', onSignal);
  return {
    controller,
    dispose: () => {
      proc.removeListener('SIGINT', onSignal);
      proc.removeListener('SIGTERM', onSignal);
    },
  };
}
