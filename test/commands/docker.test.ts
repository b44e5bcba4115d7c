// The docker shim's answers to kpt's checks, its refusals, and its dispatch through a symlink named `docker`
// (how kustomize and kpt find it on PATH). Running functions is covered in test/fn.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { BIN, krun } from '../support/cli.ts';

describe('krun docker', () => {
  test("version --format '{{.Client.Version}}' prints a docker version kpt accepts (>= 20.10.0)", async () => {
    const r = await krun(['docker', 'version', '--format', '{{.Client.Version}}']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '27.0.0\n');
  });

  test('image ls (kpt --tag resolution) lists no local images', async () => {
    const r = await krun(['docker', 'image', 'ls', '--filter', 'reference=example.com/fn', '--format', '{{ .Tag }}']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
  });

  test('unsupported commands and run flags exit 125 naming them; --help inside run is not krun help', async () => {
    const build = await krun(['docker', 'build', '.']);
    assert.equal(build.status, 125);
    assert.match(build.stderr, /^error: docker build is not supported/m);
    const flag = await krun(['docker', 'run', '--rm', '--privileged', 'img']);
    assert.equal(flag.status, 125);
    assert.match(flag.stderr, /^error: docker run: unsupported flag --privileged/m);
    const help = await krun(['docker', 'run', '--help', 'img']);
    assert.equal(help.status, 125);
    assert.match(help.stderr, /unsupported flag --help/);
  });

  test('a symlink named docker is krun docker', () => {
    const dir = mkdtempSync(join(tmpdir(), 'krun-docker-shim-'));
    symlinkSync(BIN, join(dir, 'docker'));
    const r = spawnSync('docker', ['--version'], {
      env: { PATH: `${dir}:${dirname(process.execPath)}`, CI: 'true' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Docker version 27\.0\.0, build krun-/);
  });
});
