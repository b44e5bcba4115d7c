// Which npm packages a package pulls in, from package-lock.json: start-up tests allow oclif's closure and nothing
// else on krun's fast paths.
import { readFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, { dependencies?: Record<string, string> }>;
};

/** `name` and every package it depends on, transitively (hoisted layout). */
export function dependencyClosure(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  for (const dep of Object.keys(lock.packages[`node_modules/${name}`]?.dependencies ?? {}))
    dependencyClosure(dep, seen);
  return seen;
}

/** The package a node_modules path belongs to (the innermost one): node_modules/@a/b/x.js → @a/b. */
export function packageOf(path: string): string | undefined {
  return /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];
}
