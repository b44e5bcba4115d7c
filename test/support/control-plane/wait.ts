// Polling with a deadline, for readiness checks against real servers. A failed wait names what it waited for
// and the log of the process behind it.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ManagedProcess } from './process.ts';

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Calls `probe` until it returns a value other than undefined, the process dies, or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  {
    timeoutMs = 60_000,
    intervalMs = 200,
    process,
  }: { timeoutMs?: number; intervalMs?: number; process?: ManagedProcess } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let died: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void process?.exited.then((r) => {
    died = r;
  });
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    const log = process ? `\n--- ${process.logFile}\n${tail(process.logFile)}` : '';
    if (died) throw new Error(`${process?.name} exited (${died.code ?? died.signal}) while waiting for ${what}${log}`);
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}${log}`);
    }
    await sleep(intervalMs);
  }
}
