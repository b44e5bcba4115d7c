// The CLI entry point behind bin/run.js: runs oclif and maps every outcome to an exit status in one place.
import { report } from './report.ts';

export async function main(argv: readonly string[], root: string): Promise<number> {
  const { run, flush } = await import('@oclif/core');
  try {
    // `krun docker …` passes docker's own arguments through: behind `--`, oclif looks for no --help or --version.
    await run(argv[0] === 'docker' && argv[1] !== '--help' ? ['docker', '--', ...argv.slice(1)] : [...argv], root);
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
