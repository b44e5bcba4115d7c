// The launcher in-process, for the start-up and shutdown orderings a spawned krun can't pin down: a signal that
// arrives while krun is still starting.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CancelledError } from '../../src/lib/errors.ts';
import { launch } from '../../src/lib/run/launcher.ts';
import { testContext } from '../support/context.ts';
import { launcherCase } from '../support/launcher-case.ts';

const work = await mkdtemp(join(tmpdir(), 'krun-launcher-'));
after(() => rm(work, { recursive: true, force: true }));

// A hang is the failure: the timeout only bounds it.
test('without an app, a signal that came during start-up still ends krun (exit 0)', { timeout: 30_000 }, async () => {
  const { dir, env } = await launcherCase(work, { KRUN_MESH_MODE: 'none' });
  const ctx = testContext({ env, cwd: dir });
  // The signal is already in when krun reaches its wait: the 'abort' event has fired and will not fire again.
  ctx.abort.abort(new CancelledError('interrupted by SIGTERM', 'SIGTERM'));
  assert.equal(await launch({ flags: {}, command: [], isRoot: false }, ctx), 0);
  assert.ok(
    ctx.logs().some((l) => l.message === 'no app command given; running until signalled'),
    ctx.stderr(),
  );
});
