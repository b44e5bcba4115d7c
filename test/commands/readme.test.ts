// The README is part of the interface: its command table, exit codes and test command must match the product.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ExitCode } from '../../src/lib/errors.ts';
import { SETTINGS } from '../../src/lib/run/settings.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const readme = read('README.md');
const manifest = JSON.parse(read('oclif.manifest.json')) as { commands: Record<string, { summary?: string }> };

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has a "## ${title}" section`);
  const end = readme.indexOf('\n## ', start + 4);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('README', () => {
  test('the command table lists exactly the commands krun has, with their summaries', () => {
    const rows = [...section('Commands').matchAll(/^\| `krun ([^`]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
    const commands = Object.entries(manifest.commands).map(([id, c]) => [id.replaceAll(':', ' '), c.summary]);
    assert.deepEqual(rows.sort(), commands.sort());
  });

  test('the exit-code table documents every code krun uses', () => {
    const codes = [...section('Exit codes').matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
    assert.deepEqual(
      codes.sort((a, b) => a - b),
      Object.values(ExitCode).sort((a, b) => a - b),
    );
  });

  test('the SIGTERM table names real commands, and every other command exits 130 like the table says', () => {
    const exits = section('Exit codes');
    const rows = [...exits.matchAll(/^\| (`krun [^|]+|every other command) \| ([^|]+) \|$/gm)].map((m) => m[1]);
    assert.deepEqual(rows, [
      '`krun run` with an app',
      '`krun run` without an app',
      '`krun gate`',
      'every other command',
    ]);
    for (const row of rows.slice(0, -1)) {
      const id = /^`krun ([^`]+)`/.exec(row ?? '')?.[1] ?? '';
      assert.ok(manifest.commands[id.replaceAll(' ', ':')], `${id} is a command`);
    }
    assert.match(exits, /^\| every other command \| 130, as for SIGINT \|$/m);
    assert.match(exits, new RegExp(`^\\| ${ExitCode.interrupted} \\| Interrupted: SIGINT, or SIGTERM`, 'm'));
  });

  test('the krun run settings table lists every setting with its variable, flag and mesh-env support', () => {
    const rows = [
      ...section('`krun run`: the container entrypoint').matchAll(/^\| `([^`]+)` \| `--([^`]+)`[^|]* \| (yes)? *\|/gm),
    ];
    assert.deepEqual(
      rows.map((m) => [m[1], m[2], m[3] === 'yes']),
      SETTINGS.map((s) => [s.env, s.flag, s.meshEnv === true]),
    );
  });

  test('CI runs exactly the quick start test command', () => {
    const ci = read('.ci/run').trim().split('\n').at(-1);
    assert.ok(ci, '.ci/run has a command');
    assert.match(
      section('Quick start'),
      new RegExp(`\`\`\`sh\\n${ci.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n\`\`\``),
    );
  });
});
