// The operator commands at a keyboard: the built CLI on a real pseudo-terminal (python3's pty, see test/ssh/support.ts)
// against the emulated Cloud Run: no TARGET offers the region's services to pick with the arrow keys, `krun ssh`
// gets an interactive shell on a remote terminal, and `krun cp` draws a progress bar for a large file.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { terminal } from '../ssh/support.ts';
import { BIN } from '../support/cli.ts';
import { deploy, OPERATOR, operator, world } from './support.ts';

const w = await world('terminal');
const op = await operator(w);
// Listed by name: alpha first, beta second.
await deploy(w, 'beta', { SSH_AUTH: op.pub, WHO: 'beta' }, { invoker: OPERATOR });
const alpha = await deploy(w, 'alpha', { SSH_AUTH: op.pub, WHO: 'alpha' }, { invoker: OPERATOR });

/** krun on a terminal as the operator (no CI variable: a person is at the keyboard). */
const atTerminal = (args: readonly string[]) =>
  terminal([process.execPath, BIN, ...args], 100, 30, 'xterm-256color', { ...op.env, CI: undefined });

test('no TARGET on a terminal: the services of the region to pick from; arrow down + enter reaches the second', async () => {
  // When the operator runs exec without a TARGET at a terminal
  const t = atTerminal(['exec', '--', 'sh', '-c', 'echo "reached $WHO"; exit 6']);
  // Then the region's services are offered, in name order
  await t.waitFor(/Cloud Run service in europe-west1 of ops-proj[\s\S]*alpha[\s\S]*beta/);
  // When they press arrow down, then enter
  t.type('\x1b[B');
  await t.waitFor(/❯ beta/);
  t.type('\r');
  // Then the command ran on the second service, and krun exits with its status
  await t.waitFor(/^reached beta$/m);
  assert.equal(await t.exited, 6, t.output());
  assert.doesNotMatch(t.output(), /reached alpha/);
});

test('no TARGET on a terminal in a region without services: exit 1 naming the region', async () => {
  const t = atTerminal(['exec', '--region', 'us-east1', '--', 'true']);
  assert.equal(await t.exited, 1, t.output());
  assert.match(t.output(), /^error: no Cloud Run services in region us-east1 of project ops-proj$/m);
});

test('krun ssh on a terminal: the service picked, then an interactive shell on a remote terminal', async () => {
  // When the operator runs ssh without a TARGET, takes the first service, and types commands into the shell
  const t = atTerminal(['ssh', '--log-format', 'human']);
  await t.waitFor(/❯ alpha/);
  t.type('\r');
  await t.waitFor(/Connected to Cloud Run service alpha .*instance \S+/);
  t.type('tty; echo "term=$TERM who=$WHO"\r');
  // Then the remote side has a terminal of the same type, on the right service
  await t.waitFor(/^\/dev\/pts\/\d+$/m);
  await t.waitFor(/^term=xterm-256color who=alpha$/m);
  // And the shell's exit status is krun's
  t.type('exit 5\r');
  assert.equal(await t.exited, 5, t.output());
});

test('krun cp on a terminal draws a progress bar for a large file; the file arrives intact', async () => {
  // Given a 16 MiB random file
  const data = randomBytes(16 * 1024 * 1024);
  const local = join(op.home, 'big-tty.bin');
  await writeFile(local, data);
  // When it is uploaded from a terminal
  const t = atTerminal(['cp', local, `alpha:${join(alpha.dir, 'big-tty.bin')}`]);
  assert.equal(await t.exited, 0, t.output());
  // Then the terminal shows the bar, redrawn in place and ending at 100% with the size
  const eraseLine = '\x1b[K';
  assert.match(t.output(), /\rbig-tty\.bin \[#{20}\] 100% 16\.0\/16\.0 MiB [\d.]+ MiB\/s/);
  assert.ok(t.output().includes(`MiB/s${eraseLine}\n`), 'the last draw erases the rest of the line and ends it');
  // And it was drawn more than once on the way (redrawn in place with \r)
  assert.ok((t.output().match(/\rbig-tty\.bin \[/g) ?? []).length >= 2, t.output());
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  assert.equal(sha(await readFile(join(alpha.dir, 'big-tty.bin'))), sha(data));
});
