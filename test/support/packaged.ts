// The bundle and the standalone executable for the packaging tests, built from dist/ on first use and reused while
// dist/ is unchanged (scripts/package.ts); a lock keeps concurrent test files from building them at once. A build
// failure fails the test with its reason.
import { join } from 'node:path';
import { ensurePackaged, type Packaged } from '../../scripts/package.ts';
import { acquireLock } from './fixtures/lock.ts';

export async function packaged(): Promise<Packaged> {
  const root = new URL('../..', import.meta.url).pathname;
  const release = await acquireLock(join(root, 'dist-bundle.lock'), (line) =>
    process.stderr.write(`[packaging] ${line}\n`),
  );
  try {
    return await ensurePackaged();
  } finally {
    release();
  }
}
