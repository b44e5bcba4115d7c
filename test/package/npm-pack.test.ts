// `npm pack` as a release does it (prepack builds dist/, the oclif manifest and the bundle), in a copy of the
// repository so this checkout's dist/ is left alone, then `npm install -g` of the tarball into an empty prefix with
// an empty npm cache and no network: the package must need nothing but itself.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

describe('npm package', () => {
  const work = mkdtempSync(join(tmpdir(), 'krun-npm-'));
  const prefix = join(work, 'prefix');
  // Node 24 first: the installed bin starts with #!/usr/bin/env node. No kubeconfig: krun run is standalone. No
  // npm_* variables: under `npm test` they would carry the outer npm's settings into the npm commands here.
  const inherited = Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') && k !== 'KUBECONFIG');
  const env = {
    ...Object.fromEntries(inherited),
    PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
    npm_config_update_notifier: 'false',
  };
  let tarball = '';
  let files: string[] = [];

  before(async () => {
    // The files git would commit (tracked, or new and not ignored): no dist/, manifest or bundle to start from.
    // Regular files only: a linked node_modules is linked again below.
    const copy = join(work, 'krun');
    const { stdout } = await run('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT });
    for (const file of stdout
      .split('\0')
      .filter((f) => f && lstatSync(join(ROOT, f), { throwIfNoEntry: false })?.isFile())) {
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      cpSync(join(ROOT, file), join(copy, file));
    }
    assert.ok(!existsSync(join(copy, 'oclif.manifest.json')) && !existsSync(join(copy, 'dist')));
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    const out = join(work, 'out');
    mkdirSync(out);
    await run('npm', ['pack', '--pack-destination', out], { cwd: copy, env, maxBuffer: 64 << 20 });
    tarball = join(out, readdirSync(out).find((f) => f.endsWith('.tgz')) ?? 'no tarball');
    files = (await run('tar', ['tzf', tarball])).stdout.trim().split('\n').sort();
    mkdirSync(prefix);
    const cache = join(work, 'npm-cache');
    await run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--cache', cache, '--offline', '--no-audit', '--no-fund', tarball],
      {
        env,
      },
    );
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  test('the tarball holds the bundle and nothing else to install', async () => {
    assert.deepEqual(files, [
      'package/README.md',
      'package/dist-bundle/krun.cjs',
      'package/dist-bundle/main.cjs',
      'package/package.json',
    ]);
    const { stdout } = await run('tar', ['xzfO', tarball, 'package/package.json']);
    const pjson = JSON.parse(stdout) as { dependencies?: object; bin: Record<string, string> };
    assert.equal(pjson.dependencies, undefined, 'no runtime dependencies: they are in the bundle');
    assert.deepEqual(pjson.bin, { krun: './dist-bundle/krun.cjs' });
  });

  test('the installed krun prints its version and lists the commands of the manifest made at pack time', async () => {
    const krun = join(prefix, 'bin', 'krun');
    const version = await run(krun, ['--version'], { env });
    assert.match(version.stdout, /^krun\/\d+\.\d+\.\d+ linux-\w+ node-v24\./);
    const help = await run(krun, ['--help'], { env });
    assert.match(help.stdout, /^ {2}run +Run an app as if it were a mesh-enabled Pod$/m);
    assert.match(help.stdout, /^ {2}autocomplete +/m);
  });

  test("the installed krun run -- sh -c 'exit 7' exits 7", async () => {
    const home = mkdtempSync(join(tmpdir(), 'krun-npm-home-'));
    const r = await run(join(prefix, 'bin', 'krun'), ['run', '--', 'sh', '-c', 'exit 7'], {
      env: { ...env, HOME: home, MESH_BASE_DIR: home, PORT_http: '-', KRUN_HBONE_PORT: '-' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(r.code, 7, r.stderr);
  });
});
