// Every command's --help ends with examples: a command without them fails here, so a new command can't ship bare.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { krun } from '../support/cli.ts';

const manifest = JSON.parse(readFileSync(new URL('../../oclif.manifest.json', import.meta.url), 'utf8')) as {
  commands: Record<string, { examples?: (string | { command: string })[] }>;
};

describe('--help examples', () => {
  for (const [id, command] of Object.entries(manifest.commands)) {
    const words = id.split(':');
    test(`krun ${words.join(' ')} --help shows at least one example invocation`, async () => {
      assert.ok((command.examples ?? []).length > 0, `command ${id} has no static examples`);
      const r = await krun([...words, '--help']);
      assert.equal(r.status, 0, r.stderr);
      const examples = r.stdout.split('\nEXAMPLES\n')[1];
      assert.ok(examples, `krun ${words.join(' ')} --help has an EXAMPLES section`);
      assert.match(examples, new RegExp(`\\bkrun ${words.join(' ')}\\b`), 'an example runs the command itself');
    });
  }
});
