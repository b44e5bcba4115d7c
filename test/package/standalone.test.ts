// The shipped forms of krun: the single-file bundle (dist-bundle/main.cjs, run by dist-bundle/krun.cjs), the standalone executable
// (dist-bundle/krun, Node's single-executable application), and the image recipes that layer the executable.
// Which modules a run evaluates is read from V8's coverage: esbuild wraps every lazily imported module in a function
// named after its path, and a wrapper that never ran is a module krun never evaluated.
import assert from 'node:assert/strict';
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Packaged } from '../../scripts/package.ts';
import { type HboneServer, startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { silentLogger } from '../../src/lib/log/logger.ts';
import { echo, random, startTarget, type Target } from '../hbone/support.ts';
import { keygen, run, startKrunSsh } from '../ssh/support.ts';
import { krun } from '../support/cli.ts';
import { inBuildContext, parseDockerfile, type Stage } from '../support/dockerfile.ts';
import { packaged } from '../support/packaged.ts';
import { dependencyClosure, packageOf } from '../support/packages.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

/** Runs krun (or anything) in a real process with exactly `env` (CI=true added), from HOME. */
function exec(file: string, args: readonly string[], env: NodeJS.ProcessEnv, input?: Buffer) {
  return run(file, args, { env: { CI: 'true', ...env }, cwd: env.HOME, ...(input ? { input } : {}) });
}

/** A HOME with nothing configured: `krun run` is standalone, as in a container with no mesh settings. */
function standaloneEnv(): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmpdir(), 'krun-package-'));
  return { HOME: home, MESH_BASE_DIR: home, PORT_http: '-', KRUN_HBONE_PORT: '-' };
}

let built: Packaged;
before(async () => {
  built = await packaged();
});

describe('the bundle imports each command, and the libraries it needs, only when it runs', () => {
  const oclif = dependencyClosure('@oclif/core');
  type Inputs = Record<string, { imports: { path: string; kind: string; external?: boolean }[] }>;
  const inputs = () =>
    (JSON.parse(readFileSync(join(ROOT, 'dist-bundle/meta.json'), 'utf8')) as { inputs: Inputs }).inputs;

  /** Modules evaluated whatever the command: the entry's static imports, transitively (they run unwrapped). */
  function eager(): Set<string> {
    const all = inputs();
    const seen = new Set<string>();
    const visit = (path: string) => {
      if (seen.has(path) || !all[path]) return;
      seen.add(path);
      for (const i of all[path].imports) if (!i.external && i.kind !== 'dynamic-import') visit(i.path);
    };
    visit('krun-bundle-entry.js');
    return seen;
  }

  /** The bundle's module wrappers that ran, and those that didn't, in one run of `command args`. */
  async function evaluated(command: readonly string[], args: readonly string[]) {
    const dir = mkdtempSync(join(tmpdir(), 'krun-coverage-'));
    const env = { ...standaloneEnv(), NODE_V8_COVERAGE: dir, PATH: process.env.PATH };
    const [file = '', ...rest] = command;
    const r = await exec(file, [...rest, ...args], env);
    assert.equal(r.status, 0, r.stderr);
    const ran = new Set<string>();
    const idle = new Set<string>();
    for (const f of readdirSync(dir)) {
      const { result } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
        result: { url: string; functions: { functionName: string; ranges: { count: number }[] }[] }[];
      };
      for (const script of result.filter((s) => s.url.endsWith('/dist-bundle/main.cjs'))) {
        for (const fn of script.functions) {
          // Named by path: dist/..., node_modules/... (relative to the real path when node_modules is a link).
          if (!fn.functionName.startsWith('dist/') && !fn.functionName.includes('node_modules/')) continue;
          ((fn.ranges[0]?.count ?? 0) > 0 ? ran : idle).add(fn.functionName);
        }
      }
    }
    assert.ok(ran.size > 0, 'coverage saw the bundle run');
    return { ran, idle };
  }

  const packagesOf = (paths: Iterable<string>) => new Set([...paths].flatMap((p) => packageOf(p) ?? []));

  for (const [name, command] of [
    ['bundle', () => [process.execPath, built.bundle]],
    ['standalone executable', () => [built.sea]],
  ] as const) {
    test(`${name}: run -- true and --version evaluate oclif and krun's own modules, no other library`, async () => {
      // The bundle does hold the operator libraries.
      const bundled = packagesOf(Object.keys(inputs()));
      for (const p of ['ssh2', 'listr2', 'google-auth-library', '@inquirer/core']) assert.ok(bundled.has(p), p);
      const eagerExtra = [...packagesOf(eager())].filter((p) => !oclif.has(p));
      assert.deepEqual(eagerExtra, [], 'the entry imports no library statically');
      for (const args of [['run', '--', 'true'], ['--version']]) {
        const { ran, idle } = await evaluated(command(), args);
        const extra = [...packagesOf(ran)].filter((p) => !oclif.has(p));
        assert.deepEqual(extra, [], `krun ${args.join(' ')} evaluated ${extra.join(', ')}`);
        // The measurement sees the operator libraries, unevaluated, so the check above could catch them.
        const unevaluated = packagesOf(idle);
        for (const p of ['ssh2', 'listr2', 'google-auth-library']) assert.ok(unevaluated.has(p), p);
        // Only the command that ran was imported.
        assert.ok(idle.has('dist/commands/ssh.js') && idle.has('dist/commands/setup-cluster.js'));
        assert.equal(ran.has('dist/commands/run.js'), args[0] === 'run');
      }
    });
  }

  test('the measurement sees what a command imports: autocomplete evaluates its generator', async () => {
    const { ran } = await evaluated([process.execPath, built.bundle], ['autocomplete', 'bash']);
    assert.ok(ran.has('dist/commands/autocomplete.js'));
    assert.ok(ran.has('dist/lib/cli/completion.js'));
  });
});

describe('the standalone executable runs with no Node and no node_modules', () => {
  let sea: string;
  let env: NodeJS.ProcessEnv;
  let target: Target;
  let server: HboneServer;

  before(async () => {
    // A copy in an empty directory, and a PATH holding only sh: no node, no node_modules anywhere near.
    const dir = mkdtempSync(join(tmpdir(), 'krun-sea-'));
    sea = join(dir, 'krun');
    copyFileSync(built.sea, sea);
    chmodSync(sea, 0o755);
    const bin = mkdtempSync(join(tmpdir(), 'krun-path-'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    env = { ...standaloneEnv(), PATH: bin };
    const noNode = await exec('/bin/sh', ['-c', 'command -v node'], env);
    assert.notEqual(noNode.status, 0, `node is on PATH: ${noNode.stdout}`);
    target = await startTarget(echo);
    server = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({ sshPort: null, named: { echo: String(target.port) } }),
      log: silentLogger,
    });
  });
  after(async () => {
    await server?.close();
    await target?.close();
    rmSync(dirname(sea), { recursive: true, force: true }); // a 130 MB copy
  });

  test('krun --version prints the version line', async () => {
    const r = await exec(sea, ['--version'], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout.toString(),
      `krun/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`,
    );
    assert.equal(r.stderr, '');
  });

  test("krun run -- sh -c 'exit 7' exits 7", async () => {
    const r = await exec(sea, ['run', '--', 'sh', '-c', 'exit 7'], env);
    assert.equal(r.status, 7, r.stderr);
    assert.match(r.stderr, /"message":"app exited".*"status":7/);
  });

  test('krun hbone carries bytes through a tunnel exactly', async () => {
    const data = random(1024 * 1024 + 7);
    const r = await exec(sea, ['hbone', `${server.url}/_hbone/echo`], env, data);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Buffer.compare(r.stdout, data), 0);
  });

  test('an unknown command is a usage error with hints, as in the development build', async () => {
    const r = await exec(sea, ['verson'], env);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'error: unknown command "verson"\n\nTry:\n  krun version\n  krun --help\n');
  });

  test('commands that read shipped templates find them inlined', async () => {
    const r = await exec(sea, ['setup-cluster', '--dry-run=client', '-o', 'yaml', '--project', 'p'], env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /^kind: /m);
  });

  test('its SSH debug server (ssh2 without the native addon) serves OpenSSH through its own krun hbone', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'krun-sea-ssh-'));
    const key = await keygen(dir, 'operator');
    const instance = await startKrunSsh(join(dir, 'pod'), { SSH_AUTH: key.pub }, [], [sea]);
    t.after(() => instance.stop());
    const data = random(100_000);
    const opts = [...instance.options(join(dir, 'known_hosts')), '-i', key.path, 'root@krun'];
    const cat = await run('ssh', [...opts, 'cat; exit 3'], { input: data });
    assert.equal(cat.status, 3, cat.stderr);
    assert.ok(cat.stdout.equals(data), 'the bytes come back exactly');
  });

  test("ssh-config's ProxyCommand runs the executable itself (it is its own argv[1])", async () => {
    const r = await exec(sea, ['ssh-config', 'https://svc.example.test', '--auth', 'none'], env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout.toString(),
      new RegExp(`^ {2}ProxyCommand ${sea} hbone https://svc\\.example\\.test/_hbone/22$`, 'm'),
    );
  });

  test('a symlink named docker is the KRM function shim, as kustomize and kpt call it', async () => {
    const docker = join(dirname(sea), 'docker');
    symlinkSync(sea, docker);
    const r = await exec(docker, ['version', '--format', '{{.Client.Version}}'], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString(), (await krun(['docker', 'version', '--format', '{{.Client.Version}}'])).stdout);
    const refused = await exec(docker, ['ps'], env);
    assert.equal(refused.status, 125);
    assert.match(refused.stderr.toString(), /ps/);
  });

  test('krun autocomplete prints the same script as the development build', async () => {
    const r = await exec(sea, ['autocomplete', 'bash'], env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString(), (await krun(['autocomplete', 'bash'])).stdout);
  });
});

describe('image recipes', () => {
  const images = () =>
    readdirSync(join(ROOT, 'images')).map((name) => {
      const path = `images/${name}/Dockerfile`;
      return { name, path, file: parseDockerfile(readFileSync(join(ROOT, path), 'utf8')) };
    });
  const dockerignore = () => readFileSync(join(ROOT, '.dockerignore'), 'utf8');

  /** The build-context file a path in an image comes from, following COPY --from through local images. */
  function origin(path: string, stage: Stage, stages: readonly Stage[], tags: Map<string, string>): string {
    const copy = [...stage.copies].reverse().find((c) => c.dest === path);
    assert.ok(copy, `nothing in the image puts ${path} there`);
    assert.equal(copy.sources.length, 1, `COPY to ${path} has one source`);
    const source = copy.sources[0] ?? '';
    if (!copy.from) return source;
    const from = stages.find((s) => s.name === copy.from);
    assert.ok(from, `COPY --from=${copy.from} names a stage`);
    const file = tags.get(from.image);
    assert.ok(file, `image ${from.image} is built from a recipe here (docker build -t ${from.image} -f ...)`);
    const layer = parseDockerfile(readFileSync(join(ROOT, file), 'utf8'));
    return origin(source, layer.stages.at(-1) as Stage, layer.stages, tags);
  }

  test('every COPY source exists in the build output and survives .dockerignore', () => {
    for (const { path, file } of images()) {
      for (const copy of file.stages.flatMap((s) => s.copies.filter((c) => !c.from))) {
        for (const source of copy.sources) {
          assert.ok(statSync(join(ROOT, source)).isFile(), `${path}: ${source} exists`);
          assert.ok(inBuildContext(source, dockerignore()), `${path}: .dockerignore keeps ${source}`);
        }
      }
    }
    assert.ok(!inBuildContext('node_modules/ssh2/package.json', dockerignore()), 'node_modules stays out');
  });

  test('the build commands in the recipes name the recipes, and COPY --from resolves to the executable', () => {
    const all = images();
    const tags = new Map(all.flatMap(({ file }) => [...file.builds]));
    for (const { name, path, file } of all) {
      assert.equal(file.builds.size, 1, `${path} documents its docker build command`);
      assert.deepEqual([...file.builds.values()], [path]);
      const final = file.stages.at(-1) as Stage;
      if (name === 'layer') {
        assert.equal(final.image, 'scratch');
        assert.deepEqual(final.copies, [
          { from: undefined, sources: ['dist-bundle/krun'], dest: '/usr/local/bin/krun' },
        ]);
        continue;
      }
      // The entrypoint is the standalone executable, running the app after `--`.
      assert.deepEqual(final.entrypoint?.slice(1), ['run', '--'], `${path}: ENTRYPOINT is krun run --`);
      const krunPath = final.entrypoint?.[0] ?? '';
      assert.equal(origin(krunPath, final, file.stages, tags), 'dist-bundle/krun', `${path}: ${krunPath}`);
    }
    assert.equal(join(ROOT, 'dist-bundle/krun'), built.sea);
    assert.ok(statSync(built.sea).mode & 0o111, 'the executable is executable');
  });

  test('the golden image layers krun onto an Istio proxy image, where krun run finds pilot-agent', () => {
    const golden = images().find((i) => i.name === 'golden');
    const final = golden?.file.stages.at(-1);
    assert.match(final?.image ?? '', /^docker\.io\/istio\/proxyv2:\d+\.\d+\.\d+$/);
    assert.deepEqual(final?.entrypoint, ['/usr/local/bin/krun', 'run', '--']);
  });
});
