// `krun autocomplete`: the generated scripts run in real shells (bash here, zsh from Debian's package) and complete
// the commands the manifest lists, their flags, and flag values.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { krun } from '../support/cli.ts';
import { ensureDebianPackages } from '../support/fixtures/debian.ts';

const run = promisify(execFile);
const manifest = JSON.parse(readFileSync(new URL('../../oclif.manifest.json', import.meta.url), 'utf8')) as {
  commands: Record<string, unknown>;
};
const topLevel = [...new Set(Object.keys(manifest.commands).map((id) => id.split(':')[0]))].sort();

async function script(shell: string): Promise<string> {
  const r = await krun(['autocomplete', shell]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('krun autocomplete bash', () => {
  /** What bash completes for the words typed so far (the last one being completed), one reply a line. */
  async function complete(...typed: string[]): Promise<string[]> {
    const words = typed.map((w) => `'${w}'`).join(' ');
    const program = `${await script('bash')}
COMP_WORDS=(krun ${words}); COMP_CWORD=${typed.length}; COMPREPLY=(); _krun; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const { stdout } = await run('bash', ['--norc', '--noprofile', '-c', program]);
    return stdout.split('\n').filter(Boolean);
  }

  test('completes the top-level commands and topics the manifest lists', async () => {
    assert.deepEqual(await complete(''), topLevel);
    assert.deepEqual(await complete('ru'), ['run', 'runtime']);
    assert.deepEqual(await complete('runtime', 'un'), ['uninstall']);
  });

  test("completes a command's flags, and the values of flags with fixed options", async () => {
    assert.deepEqual(await complete('version', '-'), ['--verbose', '-v', '--log-format', '--output', '-o', '--help']);
    assert.deepEqual(await complete('version', '-o', ''), ['json', 'yaml']);
    assert.deepEqual(await complete('hbone', '--transport', 'w'), ['websocket']);
    assert.deepEqual(await complete('runtime', 'plan', '--sel'), ['--selector']);
  });

  test('after -- and in arguments, leaves completion to the shell (files, commands)', async () => {
    assert.deepEqual(await complete('run', '--', 'ec'), []);
    assert.deepEqual(await complete('ssh-config', ''), []);
  });

  test('an unknown shell is a usage error naming the supported ones', async () => {
    const r = await krun(['autocomplete'], { env: { SHELL: '/usr/bin/fish' } });
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /\$SHELL is "\/usr\/bin\/fish"/);
    assert.match(r.stderr, /krun autocomplete bash\n {2}krun autocomplete zsh\n/);
    assert.equal((await krun(['autocomplete'], { env: { SHELL: '/bin/bash' } })).stdout, await script('bash'));
  });
});

describe('krun autocomplete zsh', () => {
  test('offers commands with their summaries, flags, values, and hands over after --', async () => {
    const zsh = join(
      await ensureDebianPackages({
        name: 'zsh-debian',
        packages: ['zsh'],
        expect: 'bin/zsh',
        purpose: 'checking the zsh completion script',
      }),
      'bin/zsh',
    );
    // The completion system's widgets exist only while zsh completes interactively: stand-ins print what they got.
    const program = `
_describe() { print -r -- "\${(j:|:)\${(P)\${@[-1]}}}" }
compadd() { print -r -- "\${(j:|:)\${(P)\${@[-1]}}}" }
_files() { print files }
_normal() { print "normal \${words[*]}" }
compdef() { print "compdef $*" }
${await script('zsh')}
t() { words=(krun "$@"); CURRENT=\${#words}; _krun }
t ''; t runtime ''; t version -o ''; t version --ou; t run -- ec; t ssh-config x ''`;
    const { stdout } = await run(zsh, ['-f', '-c', program]);
    const [defined, top, runtime, values, flags, after, args] = stdout.trim().split('\n');
    assert.equal(defined, 'compdef _krun krun');
    assert.deepEqual(
      top?.split('|').map((w) => w.split(':')[0]),
      topLevel,
    );
    assert.match(top ?? '', /\|run:Run an app as if it were a mesh-enabled Pod\|/);
    assert.match(runtime ?? '', /^install:Install a sandboxed runtime as a RuntimeClass\|plan:/);
    assert.equal(values, 'json|yaml');
    assert.match(flags ?? '', /\|--output:Print the result as json, yaml instead of human text\|/);
    assert.equal(after, 'normal ec');
    assert.equal(args, 'files');
  });
});
