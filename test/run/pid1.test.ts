// krun as a container's PID 1. Node cannot wait for processes it did not start, so orphaned grandchildren of the
// app are not reaped by krun itself; the supported setup is an init in front of krun (tini, `docker run --init`),
// which these tests stand in for with a minimal reaper built from test/fixtures/reaper (our own Go code).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { krun } from '../support/cli.ts';

const dir = await mkdtemp(join(tmpdir(), 'krun-pid1-'));
after(() => rm(dir, { recursive: true, force: true }));
const reaper = join(dir, 'reaper');
execFileSync('go', ['build', '-o', reaper, '.'], {
  cwd: new URL('../fixtures/reaper/', import.meta.url).pathname,
  env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
});

// A new PID namespace (unprivileged through a user namespace): its first process is PID 1.
const namespace = ['unshare', '--user', '--map-root-user', '--pid', '--fork', '--mount-proc'];
// The app orphans a child that exits early, then counts the zombies in the namespace and exits 5.
const orphaning = '(sleep 0.1 &); sleep 0.5; cat /proc/[0-9]*/stat | grep -c " Z " ; exit 5';
const env = { PATH: process.env.PATH, HOME: dir, MESH_BASE_DIR: dir, PORT_http: '-', KRUN_HBONE_PORT: '-' };

describe('krun as PID 1', () => {
  test('alone, it does not reap orphans: the documented reason to put an init in front of it', async () => {
    const r = await krun(['run', '--', 'sh', '-c', orphaning], { cleanEnv: env, prefix: namespace });
    assert.equal(r.status, 5, r.stderr);
    assert.equal(r.stdout, '1\n');
  });

  test('under an init, orphans are reaped and the app status passes through both', async () => {
    const r = await krun(['run', '--', 'sh', '-c', orphaning], { cleanEnv: env, prefix: [...namespace, reaper] });
    assert.equal(r.status, 5, r.stderr);
    assert.equal(r.stdout, '0\n');
  });
});
