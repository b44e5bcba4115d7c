// `krun ssh-config` entries used by the stock OpenSSH ssh and scp, through `krun hbone` and the emulated front end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { run } from '../ssh/support.ts';
import { deploy, OPERATOR, operator, world } from './support.ts';

const w = await world('ssh-config');
const op = await operator(w);
const svc = await deploy(w, 'box', { SSH_AUTH: op.pub }, { invoker: OPERATOR });

test('ssh-config entries work with the real ssh and scp', async () => {
  // When the operator writes the entry for service box
  const r = await op.run(['ssh-config', 'box']);
  assert.equal(r.status, 0, r.stderr);
  const host = new URL(svc.url).hostname;
  const lines = r.stdout.split('\n');
  assert.deepEqual(lines.slice(0, 3), ['Host krun.box', `  HostName ${host}`, '  User root']);
  assert.match(lines[3] as string, new RegExp(` hbone https://${host.replaceAll('.', '\\.')}/_hbone/22$`));
  const config = join(op.home, 'ssh_config');
  await writeFile(config, r.stdout);
  const opts = ['-F', config, '-i', op.keyPath, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes'];
  // Then ssh runs a command through it, with its exit status
  const ssh = await run('ssh', [...opts, 'krun.box', 'echo via-config; exit 5'], { env: op.env });
  assert.equal(ssh.stdout.toString(), 'via-config\n');
  assert.equal(ssh.status, 5, ssh.stderr);
  // And scp copies a file both ways
  const data = randomBytes(1024 * 1024 + 1);
  await writeFile(join(op.home, 'f.bin'), data);
  const up = await run('scp', [...opts, join(op.home, 'f.bin'), `krun.box:${join(svc.dir, 'f.bin')}`], { env: op.env });
  assert.equal(up.status, 0, up.stderr);
  const down = await run('scp', [...opts, `krun.box:${join(svc.dir, 'f.bin')}`, join(op.home, 'g.bin')], {
    env: op.env,
  });
  assert.equal(down.status, 0, down.stderr);
  assert.ok((await readFile(join(op.home, 'g.bin'))).equals(data));
  // And the host key pinned by ssh is in krun's known_hosts, shared with krun ssh
  const again = await op.run(['ssh', 'box', '--', 'echo', 'same-pin']);
  assert.equal(again.stdout, 'same-pin\n');
  assert.doesNotMatch(again.stderr, /Permanently added/);
});
