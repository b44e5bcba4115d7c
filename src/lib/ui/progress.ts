// A one-line progress bar for a byte transfer on stderr (`krun cp`), redrawn in place at most ten times a second.
// Only on a terminal: with stderr piped or redirected, nothing is written (logs there stay machine-readable).
import type { KrunContext } from '../context.ts';

export interface Progress {
  /** `done` bytes of the total have moved. */
  update(done: number): void;
  /** Ends the line: drawn complete when the transfer `succeeded`, left as it was otherwise. */
  end(succeeded: boolean): void;
}

const silent: Progress = { update: () => {}, end: () => {} };

const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);

export function byteProgress(ctx: KrunContext, label: string, total: number): Progress {
  const err = ctx.streams.err as typeof ctx.streams.err & { columns?: number };
  if (err.isTTY !== true || total <= 0) return silent;
  const started = ctx.clock.now().getTime();
  let drawn = 0;
  const draw = (done: number) => {
    const now = ctx.clock.now().getTime();
    const fraction = Math.min(1, done / total);
    const width = 20;
    const full = Math.round(fraction * width);
    const rate = done / Math.max(0.001, (now - started) / 1000);
    const text = `${label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${Math.floor(fraction * 100)}% ${mib(done)}/${mib(total)} MiB ${mib(rate)} MiB/s`;
    err.write(`\r${text.slice(0, Math.max(20, (err.columns ?? 80) - 1))}\x1b[K`);
    drawn = now;
  };
  return {
    update(done) {
      if (ctx.clock.now().getTime() - drawn >= 100) draw(done);
    },
    end(succeeded) {
      if (succeeded) draw(total);
      err.write('\n');
    },
  };
}
