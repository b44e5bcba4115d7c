// The CLI entry point behind bin/run.js and the bundle: runs oclif and maps every outcome to an exit status in one
// place.
import type { Interfaces } from '@oclif/core';
import { commandLine } from './command-line.ts';
import { report } from './report.ts';

/** `root` is the package root (bin/run.js passes its import.meta.url); the bundle passes a preloaded plugin. */
export async function main(argv: readonly string[], root: string | Interfaces.LoadOptions): Promise<number> {
  const { run, flush } = await import('@oclif/core');
  try {
    await run(commandLine(argv), root);
    await flush();
    return 0;
  } catch (err) {
    const commandId = argv.find((a) => !a.startsWith('-'));
    const { text, exitCode } = report(err, 'krun', commandId);
    if (text) process.stderr.write(text);
    if (process.env.KRUN_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCode;
  }
}

/**
 * Exits with `status` now instead of when the event loop drains: Node's teardown can spin forever on HTTP/2 handles
 * left by a reset tunnel (nodejs/node#47748), and an entrypoint that ignores SIGTERM gets SIGKILLed mid-drain.
 * Output still queued (stdout on a socket) is flushed first.
 */
export async function exitWhenFlushed(status: number): Promise<never> {
  process.exitCode = status;
  // An empty write's callback runs once everything queued before it is out ('drain' only follows a full buffer).
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.writableLength > 0 && stream.writable) await new Promise((resolve) => stream.write('', resolve));
  }
  process.exit();
}
