// Keeps something fresh the way kubelet does: run a task, sleep until the time it asks to run again, and on
// failure retry with exponential backoff. A failure is logged, never thrown: the app keeps running on the last
// good state (a token stays valid until it expires) while the API is down.
import type { Clock } from '../context.ts';
import type { Logger } from '../log/logger.ts';

export interface RefreshOptions {
  readonly what: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/**
 * `task` returns the time (ms since epoch) at which it wants to run again. Resolves when `signal` aborts.
 * The first run is the caller's: call this after a successful initial run, with the time it returned.
 */
export async function keepFresh(task: () => Promise<number>, nextAt: number, options: RefreshOptions): Promise<void> {
  const { clock, log, signal } = options;
  const initial = options.initialBackoffMs ?? 1000;
  const max = options.maxBackoffMs ?? 60_000;
  let backoff = initial;
  let due = nextAt;
  while (!signal.aborted) {
    try {
      await clock.sleep(due - clock.now().getTime(), signal);
    } catch {
      return; // aborted
    }
    try {
      due = await task();
      if (backoff !== initial) log.info(`${options.what} recovered`);
      backoff = initial;
    } catch (err) {
      if (signal.aborted) return;
      log.error(`${options.what} failed; retrying in ${Math.round(backoff / 1000)} s`, {
        error: (err as Error).message,
      });
      due = clock.now().getTime() + backoff;
      backoff = Math.min(backoff * 2, max);
    }
  }
}
