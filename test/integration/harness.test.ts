// The harness's promise: no process it starts outlives it, even when the test runner itself is killed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAlive, startProcess } from '../support/control-plane/process.ts';
import { waitFor } from '../support/control-plane/wait.ts';

test('children of a SIGKILLed harness die with it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'krun-harness-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Given a harness process that started a long-running child and reported its pid
  const script = `
    import { startProcess } from ${JSON.stringify(new URL('../support/control-plane/process.ts', import.meta.url).href)};
    const p = startProcess('sleeper', 'sleep', { args: ['300'], logDir: ${JSON.stringify(dir)} });
    process.stdout.write(p.pid + '\\n');
    setInterval(() => {}, 1000);
  `;
  const harness = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(harness.stdout, 'data')) as [Buffer];
  const pid = Number.parseInt(chunk.toString(), 10);
  assert.ok(isAlive(pid), 'the child runs');
  // setpriv arms the death signal before it execs the command: wait until the command runs, or the kill can race it
  await waitFor('the child to exec sleep', async () =>
    (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'sleep' ? true : undefined,
  );
  // When the harness is killed without any chance to clean up
  harness.kill('SIGKILL');
  // Then the kernel kills the child too
  await waitFor('the orphaned child to die', async () => (isAlive(pid) ? undefined : true), { timeoutMs: 10_000 });
});

test('stop() ends a child that ignores SIGTERM after the grace period', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'krun-harness-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = startProcess('stubborn', 'sh', { args: ['-c', 'trap "" TERM; while :; do sleep 0.05; done'], logDir: dir });
  await new Promise((r) => setTimeout(r, 200));
  await p.stop(300);
  const { signal } = await p.exited;
  assert.equal(signal, 'SIGKILL');
});
