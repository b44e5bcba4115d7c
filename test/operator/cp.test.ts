// `krun cp` end to end over SFTP through the emulated Cloud Run front end to a real `krun run`: a large random file
// and a directory tree, both ways, with identical checksums and modes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { deploy, OPERATOR, operator, world } from './support.ts';

const w = await world('cp');
const op = await operator(w);
const svc = await deploy(w, 'files', { SSH_AUTH: op.pub }, { invoker: OPERATOR });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function tree(root: string): Promise<string[]> {
  const entries = (await readdir(root, { recursive: true })).sort();
  return Promise.all(
    entries.map(async (e) => {
      const s = await stat(join(root, e));
      const mode = (s.mode & 0o777).toString(8);
      return s.isDirectory() ? `${e}/ ${mode}` : `${e} ${mode} ${sha256(await readFile(join(root, e)))}`;
    }),
  );
}

test('a large random file goes up and comes back with the same checksum and mode', async () => {
  // Given a 24 MiB random file, mode 640
  const data = randomBytes(24 * 1024 * 1024 + 7);
  const local = join(op.home, 'big.bin');
  await writeFile(local, data);
  await chmod(local, 0o640);
  // When it is copied to the service and back
  const up = await op.run(['cp', local, `files:${join(svc.dir, 'big.bin')}`]);
  assert.equal(up.status, 0, up.stderr);
  assert.equal(up.stdout, '');
  const down = await op.run(['cp', `files:${join(svc.dir, 'big.bin')}`, join(op.home, 'back.bin')]);
  assert.equal(down.status, 0, down.stderr);
  // And with stderr a pipe there is no progress bar either way (only log lines)
  for (const r of [up, down]) assert.doesNotMatch(r.stderr, /\r|%|MiB\/s/);
  // Then both copies have the original's bytes and mode
  assert.equal(sha256(await readFile(join(svc.dir, 'big.bin'))), sha256(data));
  assert.equal(sha256(await readFile(join(op.home, 'back.bin'))), sha256(data));
  assert.equal((await stat(join(svc.dir, 'big.bin'))).mode & 0o777, 0o640);
  assert.equal((await stat(join(op.home, 'back.bin'))).mode & 0o777, 0o640);
});

test('a directory tree goes up and comes back identical, modes included', async () => {
  // Given a tree with an executable, a private file and nested directories
  const src = join(op.home, 'tree');
  await mkdir(join(src, 'sub/deeper'), { recursive: true });
  await writeFile(join(src, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(src, 'run.sh'), 0o755);
  await writeFile(join(src, 'sub/secret'), randomBytes(70_000));
  await chmod(join(src, 'sub/secret'), 0o600);
  await writeFile(join(src, 'sub/deeper/c.txt'), 'ccc');
  await chmod(join(src, 'sub/deeper'), 0o750);
  // When it is copied into an existing remote directory, then back to a new local path
  await mkdir(join(svc.dir, 'incoming'));
  const up = await op.run(['cp', src, `files:${join(svc.dir, 'incoming')}`]);
  assert.equal(up.status, 0, up.stderr);
  const down = await op.run(['cp', `files:${join(svc.dir, 'incoming/tree')}`, join(op.home, 'tree-back')]);
  assert.equal(down.status, 0, down.stderr);
  // Then the remote copy landed under the source's name, and all three trees are the same
  const expected = await tree(src);
  assert.deepEqual(expected, [
    `run.sh 755 ${sha256(Buffer.from('#!/bin/sh\necho hi\n'))}`,
    'sub/ 755',
    'sub/deeper/ 750',
    `sub/deeper/c.txt 644 ${sha256(Buffer.from('ccc'))}`,
    expected[4] as string,
  ]);
  assert.match(expected[4] as string, /^sub\/secret 600 [0-9a-f]{64}$/);
  assert.deepEqual(await tree(join(svc.dir, 'incoming/tree')), expected);
  assert.deepEqual(await tree(join(op.home, 'tree-back')), expected);
});

test('two local paths are a usage error; a missing remote file exits 1', async () => {
  const both = await op.run(['cp', 'a', 'b']);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /^error: exactly one of SRC and DST must be remote \(TARGET:\/path\)\n/);
  const missing = await op.run(['cp', `files:${join(svc.dir, 'nothing-here')}`, join(op.home, 'x')]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^error: can't read files:.*nothing-here: no such file\n/m);
});
