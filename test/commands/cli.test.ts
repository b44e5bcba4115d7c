// The CLI as a user meets it: the built bin/run.js in a real process.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { krun, spawnKrun } from '../support/cli.ts';
import { dependencyClosure, packageOf } from '../support/packages.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  oclif: { topics?: Record<string, { description?: string }> };
};
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const manifest = JSON.parse(readFileSync(new URL('../../oclif.manifest.json', import.meta.url), 'utf8')) as {
  commands: Record<string, { summary?: string }>;
};

/** The lines of a help section (`TOPICS`, `COMMANDS`), up to the next blank line. */
const section = (help: string, title: string) => help.split(`\n${title}\n`)[1]?.split('\n\n')[0] ?? '';

describe('krun', () => {
  test('--version prints the version line on stdout only', async () => {
    const r = await krun(['--version']);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `krun/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`);
    assert.equal(r.stderr, '');
  });

  test('--help lists every command with its one-line summary (topic commands under their topic)', async () => {
    const root = await krun(['--help']);
    assert.equal(root.status, 0);
    const ids = Object.keys(manifest.commands);
    assert.ok(ids.length > 0);
    const topics = new Set<string>();
    for (const id of ids) {
      const summary = manifest.commands[id]?.summary;
      assert.ok(summary, `command ${id} has a summary`);
      const [topic, ...rest] = id.split(':');
      if (rest.length === 0) {
        assert.match(root.stdout, new RegExp(`^ {2}${id} +${escapeRegExp(summary)}$`, 'm'));
        continue;
      }
      topics.add(topic ?? '');
      const help = (await krun([topic ?? '', '--help'])).stdout;
      assert.match(help, new RegExp(`^ {2}${id.replaceAll(':', ' ')} +${escapeRegExp(summary)}$`, 'm'));
    }
    // Each topic has its own description (oclif would otherwise show its first command's summary)
    const listed = section(root.stdout, 'TOPICS');
    assert.deepEqual(
      [...listed.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]),
      [...topics].sort(),
    );
    for (const topic of topics) {
      const description = pkg.oclif.topics?.[topic]?.description;
      assert.ok(description, `package.json oclif.topics.${topic} has a description`);
      assert.ok(description.length < 50, `the ${topic} topic's description fits on one line`);
      assert.match(listed, new RegExp(`^ {2}${topic} +${escapeRegExp(description)}$`, 'm'));
      const summaries = ids.filter((id) => id.startsWith(`${topic}:`)).map((id) => manifest.commands[id]?.summary);
      assert.ok(!summaries.includes(description), `the ${topic} topic is not described by one of its commands`);
      // `krun TOPIC --help` opens with the same description
      assert.equal((await krun([topic, '--help'])).stdout.split('\n')[0], description);
    }
  });

  test('SIGTERM to a command that does not drain (hbone -L) ends it with 130, as SIGINT does', async () => {
    const p = spawnKrun(['hbone', '-L', '0:22', 'http://127.0.0.1:9'], { cleanEnv: { PATH: process.env.PATH } });
    await p.waitForLog('Forwarding from 127.0.0.1:');
    p.child.kill('SIGTERM');
    const r = await p.exited;
    assert.equal(r.status, 130, r.stderr);
  });

  test('version -o json prints the object, -o yaml the same as YAML', async () => {
    const json = await krun(['version', '-o', 'json']);
    assert.equal(json.status, 0);
    assert.deepEqual(JSON.parse(json.stdout), {
      krun: pkg.version,
      node: process.version,
      platform: `${process.platform}/${process.arch}`,
    });
    const yaml = await krun(['version', '-o', 'yaml'], { env: { KRUN_OUTPUT: undefined } });
    assert.equal(
      yaml.stdout,
      `krun: ${pkg.version}\nnode: ${process.version}\nplatform: ${process.platform}/${process.arch}\n`,
    );
  });

  test('flags have environment twins', async () => {
    const r = await krun(['version'], { env: { KRUN_OUTPUT: 'json' } });
    assert.equal(JSON.parse(r.stdout).krun, pkg.version);
  });

  test('a bad flag value is a usage error: exit 2, nothing on stdout, a Try: line', async () => {
    const r = await krun(['version', '-o', 'name']);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'error: Expected --output=name to be one of: json, yaml\n\nTry:\n  krun version --help\n');
  });

  test('an unknown flag or command is a usage error', async () => {
    const flag = await krun(['version', '--bogus']);
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /^error: Nonexistent flag: --bogus\n/);
    const command = await krun(['verson']);
    assert.equal(command.status, 2);
    assert.equal(command.stdout, '');
    assert.equal(command.stderr, 'error: unknown command "verson"\n\nTry:\n  krun version\n  krun --help\n');
  });
});

describe('start-up cost', () => {
  // krun is a container entrypoint: the fast paths may load oclif and krun's own modules, nothing else.
  const oclif = dependencyClosure('@oclif/core');

  async function loadedPackages(args: string[]): Promise<Set<string>> {
    const dir = mkdtempSync(join(tmpdir(), 'krun-modules-'));
    const file = join(dir, 'loaded.txt');
    const preload = new URL('../support/record-modules.ts', import.meta.url).href;
    // HOME without a kubeconfig: `krun run` is standalone, as in a container with nothing configured.
    const env = {
      KRUN_RECORD_MODULES: file,
      HOME: dir,
      MESH_BASE_DIR: dir,
      PORT_http: '-',
      KRUN_HBONE_PORT: '-',
      KUBECONFIG: undefined,
    };
    const r = await krun(args, { nodeArgs: ['--import', preload], env });
    assert.equal(r.status, 0, r.stderr);
    const urls = readFileSync(file, 'utf8').trim().split('\n');
    assert.ok(
      urls.some((u) => u.includes('/dist/lib/cli/main.js')),
      'the recorder saw krun load',
    );
    return new Set(urls.flatMap((u) => packageOf(u) ?? []));
  }

  test('--version, version and run -- true load only oclif and its dependencies', async () => {
    for (const args of [['--version'], ['version'], ['run', '--', 'true']]) {
      const extra = [...(await loadedPackages(args))].filter((p) => !oclif.has(p));
      assert.deepEqual(extra, [], `krun ${args.join(' ')} loaded ${extra.join(', ')}`);
    }
  });

  test('the YAML printer is loaded only when YAML is printed', async () => {
    assert.ok((await loadedPackages(['version', '-o', 'yaml'])).has('yaml'));
    assert.ok(!(await loadedPackages(['version', '-o', 'json'])).has('yaml'));
  });
});
