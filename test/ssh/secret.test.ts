// The `sshdebug` Secret as the SSH debug server's key source, against the real kube-apiserver: `krun run` with a
// kubeconfig for the workload's namespace takes its authorized keys (`authorized_key_<name>`) and host key
// (`id_ecdsa`) from the Secret, and picks up a changed Secret on its next re-read without a restart.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { controlPlane } from '../support/control-plane/shared.ts';
import { TestKube } from '../support/kube.ts';
import { launcherWorkload } from '../support/kubeconfig.ts';
import { keygen, logLines, run, startKrunSsh } from './support.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const root = await mkdtemp(join(tmpdir(), 'krun-ssh-secret-'));
after(() => rm(root, { recursive: true, force: true }));

const b64 = (text: string) => Buffer.from(text).toString('base64');

const workload = () => launcherWorkload(kube, root, 'ssh');

test('the sshdebug Secret gives the authorized keys and the host key, and its updates are picked up', async (t) => {
  // Given a namespace whose sshdebug Secret authorizes alice and holds an ECDSA host key (PEM, as ssh-keygen -m PEM)
  const dir = join(root, 'case');
  await mkdir(dir, { recursive: true });
  const [alice, bob] = [await keygen(dir, 'alice'), await keygen(dir, 'bob')];
  const hostKeyPath = join(dir, 'host_ecdsa');
  const gen = await run('ssh-keygen', ['-q', '-t', 'ecdsa', '-m', 'PEM', '-N', '', '-f', hostKeyPath]);
  assert.equal(gen.status, 0, gen.stderr);
  const hostPub = (await readFile(`${hostKeyPath}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const { ns, kubeconfig } = await workload();
  const secretPath = `/api/v1/namespaces/${ns}/secrets/sshdebug`;
  await kube.post(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: 'sshdebug' },
    data: { authorized_key_alice: b64(alice.pub), id_ecdsa: b64(await readFile(hostKeyPath, 'utf8')) },
  });
  // And krun run with a kubeconfig for that namespace, re-reading the Secret every 0.2 s
  const k = await startKrunSsh(join(dir, 'pod'), {
    KUBECONFIG: kubeconfig,
    WORKLOAD_SERVICE_ACCOUNT: 'app',
    KRUN_SSH_RESYNC_INTERVAL: '0.2',
  });
  t.after(() => k.stop());
  // And a known_hosts that trusts only the Secret's host key, checked strictly
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, `krun ${hostPub}\n`);
  const opts = k
    .options(knownHosts)
    .map((o) => (o === 'StrictHostKeyChecking=accept-new' ? 'StrictHostKeyChecking=yes' : o));
  const ssh = (key: { path: string }) => run('ssh', [...opts, '-i', key.path, 'root@krun', 'echo "in as $0"']);
  // When alice logs in
  const first = await ssh(alice);
  // Then the host key checks out against the Secret's, and the login is attributed to the Secret
  assert.equal(first.stdout.toString(), 'in as /bin/bash\n', first.stderr);
  assert.equal(first.status, 0);
  const fp = (path: string) => run('ssh-keygen', ['-l', '-E', 'sha256', '-f', path]);
  const hostFp = (await fp(`${hostKeyPath}.pub`)).stdout.toString().split(' ')[1];
  const listening = logLines(k.krun, 'SSH debug server listening')[0];
  assert.deepEqual(
    [listening?.hostKey, listening?.hostKeySource, listening?.keys],
    [hostFp, 'secret sshdebug/id_ecdsa', 1],
  );
  assert.deepEqual(
    logLines(k.krun, 'ssh login').map((l) => l.via),
    ['secret sshdebug/authorized_key_alice'],
  );
  // And bob, not in the Secret yet, is refused
  assert.equal((await ssh(bob)).status, 255);
  // When the Secret is replaced: bob's key in, alice's out
  await kube.request('PUT', secretPath, {
    metadata: { name: 'sshdebug' },
    data: { authorized_key_bob: b64(bob.pub), id_ecdsa: b64(await readFile(hostKeyPath, 'utf8')) },
  });
  await k.krun.waitForLog('"message":"SSH authorized keys changed"');
  // Then bob gets in and alice is refused, without a restart
  const second = await ssh(bob);
  assert.equal(second.stdout.toString(), 'in as /bin/bash\n', second.stderr);
  const refused = await ssh(alice);
  assert.equal(refused.status, 255);
  assert.match(refused.stderr, /Permission denied \(publickey\)/);
  assert.deepEqual(
    logLines(k.krun, 'ssh login').map((l) => l.via),
    ['secret sshdebug/authorized_key_alice', 'secret sshdebug/authorized_key_bob'],
  );
  assert.deepEqual(
    logLines(k.krun, 'SSH authorized keys changed').map((l) => [l.keys, l.secretFound]),
    [[1, true]],
  );
});
