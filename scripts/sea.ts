// Builds the standalone executable dist-bundle/krun: a copy of the Node 24 binary with the bundle
// (dist-bundle/main.cjs, from scripts/bundle.ts) injected as its single-executable-application blob. It runs with no
// Node installation and no node_modules. Must run under Node 24 (the binary that is copied is this process's).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE, OUT_DIR, ROOT } from './bundle.ts';

export const SEA = join(OUT_DIR, 'krun');

// The fuse Node's binary carries for postject to flip (documented in Node's single-executable-applications guide).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export function buildSea(): void {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run scripts/bundle.ts first`);
  const blob = join(OUT_DIR, 'sea-prep.blob');
  const config = join(OUT_DIR, 'sea-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      main: BUNDLE,
      output: blob,
      disableExperimentalSEAWarning: true,
      // V8's code cache of the bundle: the executable skips compiling what a cold start runs.
      useCodeCache: true,
    }),
  );
  // Quiet unless they fail (the error carries their stderr): postject warns about every ELF note it skips.
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' });
  const partial = `${SEA}.partial`;
  rmSync(partial, { force: true });
  copyFileSync(process.execPath, partial);
  chmodSync(partial, 0o755);
  const postject = join(ROOT, 'node_modules/postject/dist/cli.js');
  execFileSync(process.execPath, [postject, partial, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], {
    stdio: 'pipe',
  });
  renameSync(partial, SEA);
  rmSync(blob);
  rmSync(config);
}

if (import.meta.main) buildSea();
