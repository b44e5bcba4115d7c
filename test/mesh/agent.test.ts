// The supervised agent (pilot-agent, or TD's Envoy) runs detached, in its own process group: when krun exits at once
// (a second signal: exit 130 without the graceful stop), nothing else would ever stop it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { waitUntilGone } from '../support/process-gone.ts';

const dir = await mkdtemp(join(tmpdir(), 'krun-agent-'));
after(() => rm(dir, { recursive: true, force: true }));

test('an agent that ignores SIGTERM does not outlive a krun that exits at once', async () => {
  const pidFile = join(dir, 'agent.pid');
  const agent = `echo $$ > ${pidFile}; trap "" TERM; while :; do sleep 0.05; done`;
  const src = new URL('../../src/lib/', import.meta.url).pathname;
  // A krun stand-in: starts the agent under supervision, then exits as signalController does on a second signal.
  const script = `
    import { startAgent } from '${src}mesh/agent.ts';
    import { systemClock } from '${src}context.ts';
    import { statSync } from 'node:fs';
    const log = { info() {}, warn() {}, error() {}, debug() {} };
    await startAgent({
      binary: 'sh', args: ['-c', ${JSON.stringify(agent)}], env: { PATH: process.env.PATH }, cwd: '/',
      ready: async () => (statSync(${JSON.stringify(pidFile)}, { throwIfNoEntry: false })?.size ?? 0) > 0, readyDescription: 'the pid file',
      timeoutMs: 10000, graceMs: 600000, clock: systemClock, signal: new AbortController().signal, log,
    });
    process.exit(130);`;
  const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]).catch((e) => e);
  assert.equal(r.code, 130, r.stderr);
  const pid = Number(await readFile(pidFile, 'utf8'));
  assert.ok(pid > 0);
  // Killed, not orphaned
  await waitUntilGone(pid, 'the agent');
});
