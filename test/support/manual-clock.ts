// A clock whose time moves only when the test says so: refresh schedules become deterministic without waiting.
import type { TestContext } from 'node:test';
import type { Clock } from '../../src/lib/context.ts';
import type { Logger } from '../../src/lib/log/logger.ts';
import { keepFresh } from '../../src/lib/run/refresh.ts';

interface Sleeper {
  readonly at: number;
  readonly resolve: () => void;
}

export class ManualClock implements Clock {
  private ms: number;
  private sleepers: Sleeper[] = [];
  /** Every sleep ever requested, in ms: lets a test assert the schedule. */
  readonly requested: number[] = [];

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.ms = start;
  }

  now(): Date {
    return new Date(this.ms);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.requested.push(ms);
    return new Promise((resolve, reject) => {
      const sleeper = { at: this.ms + Math.max(0, ms), resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(signal.reason);
      });
    });
  }

  /** The number of sleeps waiting to be woken. */
  get pending(): number {
    return this.sleepers.length;
  }

  /** Moves time forward and wakes every sleeper that is due. */
  advance(ms: number): void {
    this.ms += ms;
    const due = this.sleepers.filter((s) => s.at <= this.ms);
    this.sleepers = this.sleepers.filter((s) => s.at > this.ms);
    for (const s of due) s.resolve();
  }
}

/** Runs the refresh loop (keepFresh) on `clock` from `first` until the test ends. */
export function refreshUntilEnd(t: TestContext, task: () => Promise<number>, first: number, clock: Clock, log: Logger) {
  const stop = new AbortController();
  const loop = keepFresh(task, first, { what: 'refresh', clock, log, signal: stop.signal });
  t.after(async () => {
    stop.abort();
    await loop;
  });
}
