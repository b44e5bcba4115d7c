// The CLI entry point behind bin/run.js: runs oclif and maps every outcome to an exit status in one place.
import { report } from './report.ts';

export async function main(argv: readonly string[], root: string): Promise<number> {
  const { run, flush } = await import('@oclif/core');
  const { commandLine } = await import('./command-line.ts');
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
