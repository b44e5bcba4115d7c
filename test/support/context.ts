// A KrunContext for in-process service tests: PassThrough streams whose text the test reads, an explicit
// environment (nothing leaks in from the test runner's), JSON logs, and an injectable clock.
import { PassThrough } from 'node:stream';
import { type Clock, createContext, type KrunContext, systemClock } from '../../src/lib/context.ts';

export interface TestContext extends KrunContext {
  /** Everything logged so far. */
  stderr(): string;
  /** Logged lines parsed as the JSON objects they are. */
  logs(): { severity: string; message: string; [k: string]: unknown }[];
  readonly abort: AbortController;
}

export function testContext(
  options: { env?: Record<string, string | undefined>; cwd?: string; clock?: Clock } = {},
): TestContext {
  const err = new PassThrough();
  let text = '';
  err.on('data', (c: Buffer) => {
    text += c.toString();
  });
  const abort = new AbortController();
  const ctx = createContext({
    streams: { in: new PassThrough(), out: new PassThrough(), err },
    env: options.env ?? { PATH: process.env.PATH },
    cwd: options.cwd ?? process.cwd(),
    signal: abort.signal,
    clock: options.clock ?? systemClock,
    logFormat: 'json',
    logLevel: 'debug',
  });
  return {
    ...ctx,
    abort,
    stderr: () => text,
    logs: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}
