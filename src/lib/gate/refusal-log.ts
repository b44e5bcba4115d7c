// The log of refused connections, bounded: a scanner or a misconfigured client can open thousands of bad connections
// a minute, and each would otherwise be a log line. The first few per reason in each window are logged in full (peer,
// SNI, detail); the rest are only counted, and one summary line per reason says how many went unlogged when the
// window ends. Metrics count every refusal regardless.
import type { Logger } from '../log/logger.ts';

export interface RefusalLogOptions {
  readonly log: Logger;
  /** Lines logged in full per reason and window. */
  readonly perWindow: number;
  readonly windowMs: number;
}

interface Window {
  logged: number;
  suppressed: number;
  timer: NodeJS.Timeout;
}

export class RefusalLog {
  readonly #options: RefusalLogOptions;
  readonly #windows = new Map<string, Window>();

  constructor(options: RefusalLogOptions) {
    this.#options = options;
  }

  /** Logs one refusal (at `level`) unless this reason's window is full; then it is only counted for the summary. */
  refused(level: 'debug' | 'warn', reason: string, fields: Record<string, unknown>): void {
    let window = this.#windows.get(reason);
    if (!window) {
      const timer = setTimeout(() => this.#close(reason), this.#options.windowMs);
      timer.unref();
      window = { logged: 0, suppressed: 0, timer };
      this.#windows.set(reason, window);
    }
    if (window.logged < this.#options.perWindow) {
      window.logged += 1;
      this.#options.log[level]('connection closed', { reason, ...fields });
    } else {
      window.suppressed += 1;
    }
  }

  /** Ends every window now, writing their summaries (at shutdown, so no count is lost). */
  flush(): void {
    for (const reason of [...this.#windows.keys()]) this.#close(reason);
  }

  #close(reason: string): void {
    const window = this.#windows.get(reason);
    if (!window) return;
    clearTimeout(window.timer);
    this.#windows.delete(reason);
    if (window.suppressed === 0) return;
    this.#options.log.warn('connections closed without a log line', {
      reason,
      count: window.suppressed,
      logged: window.logged,
      windowSeconds: this.#options.windowMs / 1000,
    });
  }
}
