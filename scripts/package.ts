// Builds the bundle and the standalone executable (dist-bundle/{krun.cjs,main.cjs}, dist-bundle/krun) from dist/,
// unless dist-bundle/ was already built from the same inputs: the packaging tests and bench/package.ts call this,
// and a rebuild of dist/ with the same output costs nothing. `npm run package` runs it after `npm run build`.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BUNDLE, bundle, LAUNCHER, OUT_DIR, ROOT } from './bundle.ts';
import { buildSea, SEA } from './sea.ts';

const STAMP = join(OUT_DIR, 'inputs.sha256');
// What the bundle is made of: the build, the shipped files, the locked libraries, and the scripts themselves.
const INPUTS = [
  'dist',
  'templates',
  'package.json',
  'package-lock.json',
  'oclif.manifest.json',
  'scripts/bundle.ts',
  'scripts/sea.ts',
];

function files(path: string): string[] {
  if (!existsSync(path)) throw new Error(`${relative(ROOT, path)} is missing: run \`npm run build\` first`);
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

function inputsHash(): string {
  const hash = createHash('sha256').update(process.version);
  for (const file of INPUTS.flatMap((p) => files(join(ROOT, p)))) {
    hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

export interface Packaged {
  /** What the npm package runs: dist-bundle/krun.cjs, which runs the bundle. */
  readonly bundle: string;
  readonly sea: string;
}

export async function ensurePackaged(): Promise<Packaged> {
  const want = inputsHash();
  const have = existsSync(STAMP) ? readFileSync(STAMP, 'utf8') : '';
  if (want !== have || !existsSync(BUNDLE) || !existsSync(LAUNCHER) || !existsSync(SEA)) {
    await bundle();
    buildSea();
    writeFileSync(STAMP, want);
  }
  return { bundle: LAUNCHER, sea: SEA };
}

if (import.meta.main) {
  const { bundle: b, sea } = await ensurePackaged();
  process.stdout.write(`${relative(process.cwd(), b)}\n${relative(process.cwd(), sea)}\n`);
}
