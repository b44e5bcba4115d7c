// The SSH debug server inside `krun run`, driven by the stock OpenSSH client through `krun hbone` as ProxyCommand:
// remote commands and their exit statuses, refused keys and passwords, a host key that survives restarts, scp and
// sftp through the in-process sftp subsystem, -L and -R forwards, PTY sessions and OpenSSH user certificates.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Client } from 'ssh2';
import { transportAlgorithms } from '../../src/lib/ssh/algorithms.ts';
import { echo, startTarget } from '../hbone/support.ts';
import { freePort } from '../support/control-plane/ports.ts';
import { keygen, logLines, run, signUserCertificate, startKrunSsh, terminal } from './support.ts';

const root = await mkdtemp(join(tmpdir(), 'krun-ssh-'));
after(() => rm(root, { recursive: true, force: true }));
let n = 0;
const fresh = async () => {
  const dir = join(root, `t${++n}`);
  await mkdir(dir, { recursive: true });
  return dir;
};
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('ssh runs remote commands: output, stderr, exit status, exit signal, env requests and an audit line', async (t) => {
  // Given krun run with one authorized key from SSH_AUTH
  const dir = await fresh();
  const key = await keygen(dir, 'operator');
  const k = await startKrunSsh(join(dir, 'pod'), { SSH_AUTH: key.pub });
  t.after(() => k.stop());
  const ssh = (remote: string, extra: string[] = []) =>
    run('ssh', [...k.options(join(dir, 'known_hosts')), '-i', key.path, ...extra, 'root@krun', remote]);
  // When a command writes to stdout and stderr and exits 3
  const r = await ssh('echo hello; echo oops >&2; exit 3');
  // Then ssh shows both streams apart and exits with the remote status
  assert.equal(r.stdout.toString(), 'hello\n');
  assert.match(r.stderr, /oops\n/);
  assert.equal(r.status, 3);
  // And a command killed by a signal ends ssh with 255 (OpenSSH's status for "no exit status")
  const killed = await ssh('kill -TERM $$');
  assert.equal(killed.status, 255);
  // And variables sent with SetEnv reach the command
  const env = await ssh('echo "$KRUN_TEST_VAR"', ['-o', 'SetEnv=KRUN_TEST_VAR=from-the-client']);
  assert.equal(env.stdout.toString(), 'from-the-client\n');
  // And stdin reaches the command byte for byte
  const data = randomBytes(200_000);
  const cat = await run('ssh', [...k.options(join(dir, 'known_hosts')), '-i', key.path, 'root@krun', 'cat'], {
    input: data,
  });
  assert.equal(cat.status, 0, cat.stderr);
  assert.ok(cat.stdout.equals(data), 'cat returns exactly the bytes sent');
  // And every session leaves an audit line with the key fingerprint, the command and how it ended
  const fp = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key.path}.pub`])).stdout.toString().split(' ')[1];
  const ended = logLines(k.krun, 'ssh session ended');
  assert.deepEqual(
    ended.map((l) => [l.key, l.what, l.command, l.exit ?? l.signal]),
    [
      [fp, 'exec', 'echo hello; echo oops >&2; exit 3', 3],
      [fp, 'exec', 'kill -TERM $$', 'SIGTERM'],
      [fp, 'exec', 'echo "$KRUN_TEST_VAR"', 0],
      [fp, 'exec', 'cat', 0],
    ],
  );
});

test('an unknown key and passwords are refused; the refusals are logged', async (t) => {
  // Given krun run that authorizes one key
  const dir = await fresh();
  const [allowed, stranger] = [await keygen(dir, 'allowed'), await keygen(dir, 'stranger')];
  const k = await startKrunSsh(join(dir, 'pod'), { SSH_AUTH: allowed.pub });
  t.after(() => k.stop());
  const base = k.options(join(dir, 'known_hosts'));
  // When another key tries to log in, it is refused with publickey as the only method offered
  const r = await run('ssh', [...base, '-i', stranger.path, 'root@krun', 'true']);
  assert.equal(r.status, 255);
  assert.match(r.stderr, /Permission denied \(publickey\)/);
  // And an OpenSSH client that will only use a password gets nowhere
  const pw = await run('ssh', [...base, '-o', 'PreferredAuthentications=password', 'root@krun', 'true']);
  assert.equal(pw.status, 255);
  assert.match(pw.stderr, /Permission denied \(publickey\)/);
  // And a client that sends a password anyway (straight to the loopback port) is refused
  const client = new Client();
  const failure = once(client, 'error');
  client.connect({ host: '127.0.0.1', port: k.sshPort, username: 'root', password: 'hunter2', tryKeyboard: true });
  const [err] = (await failure) as [Error & { level?: string }];
  assert.equal(err.level, 'client-authentication');
  client.end();
  // Then the log names the refused key and the refused password, never accepting either
  const refused = logLines(k.krun, 'ssh login refused');
  const fp = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${stranger.path}.pub`])).stdout
    .toString()
    .split(' ')[1];
  assert.ok(refused.some((l) => l.key === fp && l.reason === 'key not authorized'));
  assert.ok(refused.some((l) => l.reason === 'password authentication is refused'));
  assert.equal(logLines(k.krun, 'ssh login').length, 0);
});

test('the host key survives a restart, so known_hosts stays valid', async () => {
  // Given krun run that generated its host key, and a known_hosts entry from a first login
  const dir = await fresh();
  const key = await keygen(dir, 'operator');
  const pod = join(dir, 'pod');
  const knownHosts = join(dir, 'known_hosts');
  const first = await startKrunSsh(pod, { SSH_AUTH: key.pub });
  const r1 = await run('ssh', [...first.options(knownHosts), '-i', key.path, 'root@krun', 'echo one']);
  assert.equal(r1.stdout.toString(), 'one\n', r1.stderr);
  const fp1 = logLines(first.krun, 'SSH debug server listening')[0]?.hostKey;
  await first.stop();
  // When krun restarts on the same base dir
  const second = await startKrunSsh(pod, { SSH_AUTH: key.pub });
  try {
    // Then strict host key checking passes against the old entry
    const opts = second
      .options(knownHosts)
      .map((o) => (o === 'StrictHostKeyChecking=accept-new' ? 'StrictHostKeyChecking=yes' : o));
    const r2 = await run('ssh', [...opts, '-i', key.path, 'root@krun', 'echo two']);
    assert.equal(r2.stdout.toString(), 'two\n', r2.stderr);
    // And the same fingerprint is logged, and the key file is private to its owner
    assert.equal(logLines(second.krun, 'SSH debug server listening')[0]?.hostKey, fp1);
    const mode = (await stat(join(pod, 'var/lib/krun/ssh/ssh_host_ed25519_key'))).mode & 0o777;
    assert.equal(mode, 0o600);
  } finally {
    await second.stop();
  }
});

test('OpenSSH negotiates the cipher krun prefers; CBC ciphers and SHA-1 MACs are refused', async (t) => {
  // Given krun run, and the cipher krun puts first (AES-GCM while ssh2's native binding is not loaded)
  const dir = await fresh();
  const key = await keygen(dir, 'operator');
  const k = await startKrunSsh(join(dir, 'pod'), { SSH_AUTH: key.pub });
  t.after(() => k.stop());
  const [preferred] = transportAlgorithms().cipher;
  const ssh = (extra: string[]) =>
    run('ssh', [...k.options(join(dir, 'known_hosts')), '-i', key.path, ...extra, 'root@krun', 'true']);
  // When OpenSSH connects with its default algorithm lists
  const r = await ssh(['-v']);
  // Then both directions use that cipher
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`kex: server->client cipher: ${preferred} `));
  assert.match(r.stderr, new RegExp(`kex: client->server cipher: ${preferred} `));
  // And a client that only offers CBC, or CTR with a SHA-1 MAC, finds nothing in common
  for (const extra of [
    ['-c', 'aes128-cbc'],
    ['-c', 'aes128-ctr', '-m', 'hmac-sha1'],
  ]) {
    const refused = await ssh(extra);
    assert.equal(refused.status, 255, extra.join(' '));
    assert.match(refused.stderr, /no matching (cipher|MAC) found/, extra.join(' '));
  }
});

test('scp and sftp work through the in-process sftp subsystem', async (t) => {
  // Given krun run and a 32 MiB random file
  const dir = await fresh();
  const key = await keygen(dir, 'operator');
  const pod = join(dir, 'pod');
  const k = await startKrunSsh(pod, { SSH_AUTH: key.pub });
  t.after(() => k.stop());
  const opts = [...k.options(join(dir, 'known_hosts')), '-i', key.path];
  const big = randomBytes(32 * 1024 * 1024);
  await writeFile(join(dir, 'big.bin'), big);
  // When it is uploaded and downloaded again with scp
  const up = await run('scp', [...opts, join(dir, 'big.bin'), `root@krun:${join(pod, 'big.bin')}`]);
  assert.equal(up.status, 0, up.stderr);
  const down = await run('scp', [...opts, `root@krun:${join(pod, 'big.bin')}`, join(dir, 'back.bin')]);
  assert.equal(down.status, 0, down.stderr);
  // Then both copies have the original's checksum
  assert.equal(sha256(await readFile(join(pod, 'big.bin'))), sha256(big));
  assert.equal(sha256(await readFile(join(dir, 'back.bin'))), sha256(big));
  // When a directory tree is copied recursively
  await mkdir(join(dir, 'tree/sub/deeper'), { recursive: true });
  await writeFile(join(dir, 'tree/a.txt'), 'a');
  await writeFile(join(dir, 'tree/sub/b.txt'), 'bb');
  await writeFile(join(dir, 'tree/sub/deeper/c.txt'), 'ccc');
  const tree = await run('scp', [...opts, '-r', join(dir, 'tree'), `root@krun:${join(pod, 'copied')}`]);
  assert.equal(tree.status, 0, tree.stderr);
  // Then the same tree exists remotely
  assert.deepEqual((await readdir(join(pod, 'copied'), { recursive: true })).sort(), [
    'a.txt',
    'sub',
    'sub/b.txt',
    'sub/deeper',
    'sub/deeper/c.txt',
  ]);
  assert.equal(await readFile(join(pod, 'copied/sub/deeper/c.txt'), 'utf8'), 'ccc');
  // When an sftp batch makes a directory, uploads, lists, renames, downloads and removes
  const batch = [
    `cd ${pod}`,
    'mkdir box',
    `put ${join(dir, 'tree/a.txt')} box/a.txt`,
    'rename box/a.txt box/renamed.txt',
    'ls box',
    `get box/renamed.txt ${join(dir, 'fetched.txt')}`,
    'chmod 600 box/renamed.txt',
    'symlink renamed.txt box/link',
    'rm box/link',
    'rm box/renamed.txt',
    'rmdir box',
  ].join('\n');
  const sftp = await run('sftp', [...opts, '-b', '-', 'root@krun'], { input: `${batch}\n` });
  // Then every step succeeds and leaves the expected files
  assert.equal(sftp.status, 0, sftp.stderr);
  assert.match(sftp.stdout.toString(), /box\/renamed\.txt/);
  assert.equal(await readFile(join(dir, 'fetched.txt'), 'utf8'), 'a');
  await assert.rejects(stat(join(pod, 'box')), /ENOENT/);
  // And the sessions are audited as sftp
  assert.ok(logLines(k.krun, 'ssh session ended').every((l) => l.what === 'sftp'));
});

test('ssh -L reaches loopback targets only, and ssh -R listens on loopback and is answered', async (t) => {
  // Given krun run, an echo server on loopback
  const dir = await fresh();
  const key = await keygen(dir, 'operator');
  const k = await startKrunSsh(join(dir, 'pod'), { SSH_AUTH: key.pub });
  t.after(() => k.stop());
  const target = await startTarget(echo);
  t.after(() => target.close());
  const opts = [...k.options(join(dir, 'known_hosts')), '-i', key.path, '-o', 'ExitOnForwardFailure=yes'];
  const roundTrip = (port: number, data: Buffer) =>
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const socket = connect(port, '127.0.0.1', () => socket.end(data));
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => {}); // a refused forward resets the connection: it returns nothing either way
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
  // When ssh -L forwards a local port to the echo server through krun
  const localPort = await freePort();
  let remotePort = await freePort();
  while (remotePort === localPort) remotePort = await freePort();
  const forward = run('ssh', [
    ...opts,
    '-L',
    `127.0.0.1:${localPort}:127.0.0.1:${target.port}`,
    'root@krun',
    `echo up; sleep 30`,
  ]);
  await waitForLine(k.krun, 'ssh session started');
  await waitListening(localPort);
  const data = randomBytes(100_000);
  // Then the bytes come back through the tunnel, and the forward is audited
  assert.ok((await roundTrip(localPort, data)).equals(data));
  const opened = logLines(k.krun, 'ssh forward').map((l) => [l.audit, l.what, l.target]);
  assert.ok(opened.length > 0);
  assert.ok(
    opened.every((f) => f.join() === `ssh.forward,direct-tcpip,127.0.0.1:${target.port}`),
    String(opened),
  );
  // When ssh -R asks krun to listen and forward back to the client's echo server
  const reverse = run('ssh', [
    ...opts,
    '-R',
    `127.0.0.1:${remotePort}:127.0.0.1:${target.port}`,
    'root@krun',
    'sleep 30',
  ]);
  await waitForLine(k.krun, 'ssh remote forward');
  // Then a connection to that port on the workload side reaches the client's target
  assert.ok((await roundTrip(remotePort, data)).equals(data));
  assert.deepEqual(
    logLines(k.krun, 'ssh remote forward').map((l) => [l.audit, l.what, l.bind]),
    [['ssh.forward', 'tcpip-forward', `127.0.0.1:${remotePort}`]],
  );
  // And a request to listen on all interfaces is refused (ssh exits at once with ExitOnForwardFailure)
  const wide = await run('ssh', [...opts, '-R', `0.0.0.0:${await freePort()}:127.0.0.1:1`, 'root@krun', 'sleep 30']);
  assert.equal(wide.status, 255);
  assert.match(wide.stderr, /remote port forwarding failed/);
  // And -L to a non-loopback address is refused
  let away = await freePort();
  while (away === localPort || away === remotePort) away = await freePort();
  const far = run('ssh', [...opts, '-L', `127.0.0.1:${away}:192.0.2.1:80`, 'root@krun', 'sleep 30']);
  await waitListening(away);
  const refused = await roundTrip(away, Buffer.from('x'));
  assert.equal(refused.length, 0);
  assert.ok(logLines(k.krun, 'ssh forward refused').some((l) => l.target === '192.0.2.1:80'));
  for (const p of [forward, reverse, far]) void p;
  await k.stop();
  await Promise.all([forward, reverse, far]);
});

test('ssh -tt gets a terminal: tty, TERM, the window size and its changes, Ctrl-C as SIGINT', async (t) => {
  // Given krun run, and the stock ssh client on a 100x30 terminal with TERM=vt220
  const dir = await fresh();
  const key = await keygen(dir, 'operator');
  const k = await startKrunSsh(join(dir, 'pod'), { SSH_AUTH: key.pub });
  t.after(() => k.stop());
  assert.match(logLines(k.krun, 'SSH debug server listening')[0]?.pty as string, /^python3 pty \(/);
  const remote = [
    'tty',
    'echo "term=$TERM size=$(stty size)"',
    `trap 'echo "resized=$(stty size)"' WINCH`,
    `trap 'echo interrupted; exit 7' INT`,
    'echo ready',
    'while :; do sleep 0.1; done',
  ].join('; ');
  const opts = [...k.options(join(dir, 'known_hosts')), '-i', key.path, '-q', '-tt'];
  const term = terminal(['ssh', ...opts, 'root@krun', remote], 100, 30, 'vt220');
  // When the command starts
  await term.waitFor(/ready\n/);
  // Then it runs on a terminal of the client's size, with the client's TERM
  assert.match(term.output(), /^\/dev\/pts\/\d+\nterm=vt220 size=30 100\nready\n/m);
  // When the client's terminal is resized, the command sees the new size
  term.resize(132, 40);
  await term.waitFor(/resized=40 132\n/);
  // When Ctrl-C is typed, the command gets SIGINT and its exit status comes back
  term.type('\x03');
  assert.equal(await term.exited, 7);
  assert.match(term.output(), /interrupted\n$/);
  // And an interactive shell gets the terminal too
  const shell = terminal(['ssh', ...opts, 'root@krun'], 90, 20, 'xterm');
  shell.type('echo "shell $TERM $(stty size)"; exit 5\r');
  assert.equal(await shell.exited, 5);
  assert.match(shell.output(), /^shell xterm 20 90$/m);
  // And the sessions are audited with their PTY and end
  assert.deepEqual(
    logLines(k.krun, 'ssh session started').map((l) => [l.what, l.pty]),
    [
      ['exec', true],
      ['shell', true],
    ],
  );
  assert.deepEqual(
    logLines(k.krun, 'ssh session ended').map((l) => [l.what, l.exit]),
    [
      ['exec', 7],
      ['shell', 5],
    ],
  );
});

test('OpenSSH user certificates log in end to end; expired ones and other principals are refused', async (t) => {
  // Given krun run trusting a CA through a cert-authority line, and user certificates signed by it with ssh-keygen
  const dir = await fresh();
  const ca = await keygen(dir, 'ca');
  const certify = async (name: string, principals: string, validity: string) => {
    const user = await keygen(dir, name);
    const cert = await signUserCertificate(ca.path, user.path, name, principals, validity);
    return ['-i', user.path, '-o', `CertificateFile=${cert}`];
  };
  const k = await startKrunSsh(join(dir, 'pod'), { SSH_AUTH: `cert-authority ${ca.pub}` });
  t.after(() => k.stop());
  const ssh = (cert: string[]) => run('ssh', [...k.options(join(dir, 'known_hosts')), ...cert, 'root@krun', 'echo in']);
  // When a current certificate for root logs in
  const ok = await ssh(await certify('alice', 'root', '-5m:+1h'));
  // Then the command runs, and the login is audited with the certificate's key id and principals
  assert.equal(ok.stdout.toString(), 'in\n', ok.stderr);
  assert.equal(ok.status, 0);
  assert.deepEqual(
    logLines(k.krun, 'ssh login').map((l) => [l.audit, l.keyId, l.principals, l.user]),
    [['ssh.auth.accept', 'alice', ['root'], 'root']],
  );
  // When an expired certificate and one for another principal try
  const expired = await ssh(await certify('bob', 'root', '20200101:20200201'));
  const elsewhere = await ssh(await certify('carol', 'admin,deploy', '-5m:+1h'));
  // Then both are refused, and the log says why
  for (const r of [expired, elsewhere]) {
    assert.equal(r.status, 255);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
  }
  // (each client then offers the bare key too, which no line authorizes); refused certificates name who they claim
  assert.deepEqual(
    logLines(k.krun, 'ssh login refused').map((l) => [l.audit, l.reason, l.keyId, l.principals]),
    [
      ['ssh.auth.reject', 'certificate expired', 'bob', ['root']],
      ['ssh.auth.reject', 'key not authorized', undefined, undefined],
      ['ssh.auth.reject', 'no principal matches root', 'carol', ['admin', 'deploy']],
      ['ssh.auth.reject', 'key not authorized', undefined, undefined],
    ],
  );
  assert.equal(logLines(k.krun, 'ssh login').length, 1);
});

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function waitForLine(krun: import('../support/cli.ts').Spawned, message: string): Promise<void> {
  await krun.waitForLog(`"message":"${message}"`);
}
