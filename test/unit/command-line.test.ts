// How krun invoked as `docker` (a symlink, or a single executable named docker) becomes `krun docker …`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commandLine } from '../../src/lib/cli/command-line.ts';

test('a symlink named docker (script or single executable) runs krun docker, its arguments behind --', () => {
  assert.deepEqual(commandLine(['run', '--help', 'img'], ['/usr/local/shim/docker', 'node']), [
    'docker',
    '--',
    'run',
    '--help',
    'img',
  ]);
  assert.deepEqual(commandLine(['version'], ['/opt/krun/docker', 'docker']), ['docker', '--', 'version']);
  assert.deepEqual(commandLine(['version'], [undefined, '/usr/bin/docker']), ['docker', '--', 'version']);
});

test('krun docker --help is krun help; other commands are untouched', () => {
  assert.deepEqual(commandLine(['docker', '--help'], ['/x/bin/run.js', 'node']), ['docker', '--help']);
  assert.deepEqual(commandLine(['docker', 'run', 'img'], ['/x/bin/run.js', 'node']), ['docker', '--', 'run', 'img']);
  assert.deepEqual(commandLine(['fn', 'run', '--help'], ['/x/bin/run.js', 'node']), ['fn', 'run', '--help']);
});
