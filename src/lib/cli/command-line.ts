// The arguments oclif gets. krun invoked through a symlink named `docker` (the KRM function shim kustomize and kpt
// find on PATH) is `krun docker …`, whichever entry point started it; and `krun docker …` passes docker's own
// arguments through behind `--`, so oclif looks for no --help or --version among them.
import { basename } from 'node:path';

export function commandLine(
  argv: readonly string[],
  invokedAs: readonly (string | undefined)[] = [process.argv[1], process.argv0],
): string[] {
  const args = invokedAs.some((p) => p !== undefined && basename(p) === 'docker') ? ['docker', ...argv] : [...argv];
  return args[0] === 'docker' && args[1] !== '--help' ? ['docker', '--', ...args.slice(1)] : args;
}
