// One Google credential lookup per operator command. google-auth-library, asked for credentials without a project,
// looks for one itself and runs `gcloud config config-helper` (half a second with the real gcloud) before anything
// else; a command that made two GoogleAuths (the Admin API lookup of a service name, then the ID token) paid it
// twice. A `gcloud` on PATH that records its runs shows how often the library searched.
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { packageOf } from '../support/packages.ts';
import { deploy, OPERATOR, operator, PROJECT, REGION, world } from './support.ts';

const w = await world('google-auth');
const op = await operator(w);
const { url, instance } = await deploy(w, 'lookup', { SSH_AUTH: op.pub }, { invoker: OPERATOR });
await deploy(w, 'other', { SSH_AUTH: op.pub }, { invoker: OPERATOR });

let n = 0;
/** An environment whose `gcloud` appends its arguments to a file, and that file's lines after the command. */
async function recordingGcloud(env: Record<string, string | undefined>) {
  const bin = await w.dir(`gcloud-${++n}`);
  const log = join(bin, 'runs.log');
  await writeFile(log, '');
  await writeFile(join(bin, 'gcloud'), `#!/bin/sh\necho "$*" >> ${log}\nexit 1\n`);
  await chmod(join(bin, 'gcloud'), 0o755);
  return {
    env: { ...env, PATH: `${bin}:${process.env.PATH}` },
    runs: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean),
  };
}

describe('Google credentials of an operator command', () => {
  test('exec SERVICE (project from the environment): the Admin API and the ID token share one lookup, no gcloud', async () => {
    const gcloud = await recordingGcloud({});
    const r = await op.run(['exec', 'lookup', '--', 'echo', 'resolved'], { env: gcloud.env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'resolved\n');
    assert.deepEqual(await gcloud.runs(), []);
  });

  test('exec SERVICE with --project and --region, nothing in the environment: no gcloud either', async () => {
    const gcloud = await recordingGcloud({ CLOUDSDK_CORE_PROJECT: undefined, CLOUDSDK_RUN_REGION: undefined });
    const r = await op.run(['exec', 'lookup', '--project', PROJECT, '--region', REGION, '--', 'true'], {
      env: gcloud.env,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await gcloud.runs(), []);
  });

  test('exec URL with no project anywhere: the library searches for one exactly once', async () => {
    const gcloud = await recordingGcloud({ CLOUDSDK_CORE_PROJECT: undefined });
    const r = await op.run(['exec', url, '--', 'echo', 'by-url'], { env: gcloud.env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'by-url\n');
    assert.deepEqual(await gcloud.runs(), ['config config-helper --format json']);
  });

  test('ssh-config for two services resolves both with one GoogleAuth and no gcloud', async () => {
    const gcloud = await recordingGcloud({});
    const r = await op.run(['ssh-config', 'lookup', 'other'], { env: gcloud.env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Host krun\.lookup$/m);
    assert.match(r.stdout, /^Host krun\.other$/m);
    assert.deepEqual(await gcloud.runs(), []);
  });
});

test('a target without Google authentication never loads the Google libraries', async () => {
  const file = join(await w.dir('modules'), 'loaded.txt');
  const preload = new URL('../support/record-modules.ts', import.meta.url).href;
  // The instance itself, over cleartext HTTP/2: no ID token to fetch
  const r = await op.run(['exec', `http://127.0.0.1:${instance.hbonePort}`, '--', 'echo', 'direct'], {
    nodeArgs: ['--import', preload],
    env: { KRUN_RECORD_MODULES: file },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'direct\n');
  const packages = new Set((await readFile(file, 'utf8')).split('\n').flatMap((u) => packageOf(u) ?? []));
  assert.ok(packages.has('ssh2'), 'the recorder saw the SSH client load');
  for (const heavy of ['google-auth-library', 'gcp-metadata', 'gaxios']) assert.ok(!packages.has(heavy), heavy);
});
