// Files krun ships beside dist/ (templates/). The single-file bundle and the standalone executable have no such
// directory: scripts/bundle.ts replaces this module with one that holds the same files' contents.
import { readFile } from 'node:fs/promises';

/** The path of a shipped file, relative to the package root (e.g. templates/gate.yaml). */
export function shippedPath(relative: string): string {
  return new URL(`../../../${relative}`, import.meta.url).pathname;
}

export function readShipped(relative: string): Promise<string> {
  return readFile(shippedPath(relative), 'utf8');
}
