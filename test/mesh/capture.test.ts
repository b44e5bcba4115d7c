// Sidecar mode's outbound capture applied for real: Debian's iptables (from the fixtures cache) run by
// captureOutbound, the call `krun run` makes as root, inside a network namespace this test creates with only a
// loopback interface (nothing can leave it). Asserted with iptables-save and by connections made in the namespace.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ensureIptables } from '../support/fixtures/iptables.ts';

const exec = promisify(execFile);
const iptables = await ensureIptables((line) => process.stderr.write(`[iptables fixture] ${line}\n`));
const NETNS = `krun-capture-${process.pid}`;
const APP_IP = '10.9.0.1';
const NAMESERVER = '10.9.0.53';
const APPLY = new URL('./support/apply-capture.ts', import.meta.url).pathname;
const LISTENERS = new URL('./support/netns-listeners.ts', import.meta.url).pathname;

/** Runs a command in the namespace, optionally under setpriv's credentials. */
function inNetns(command: string[], creds: string[] = [], env: Record<string, string> = {}) {
  const wrapped = creds.length ? ['setpriv', ...creds, '--clear-groups', ...command] : command;
  return exec('ip', ['netns', 'exec', NETNS, ...wrapped], {
    // HOME elsewhere: bash reads ~/.bashrc when its stdin is a socket, as Node's pipes are.
    env: { PATH: process.env.PATH, HOME: '/nonexistent', ...env },
    timeout: 20_000,
  });
}

/** What a TCP connection to host:port reads (bash's /dev/tcp: no Node startup, runnable by any UID). */
async function dialTcp(host: string, port: number, creds: string[] = []): Promise<string> {
  const r = await inNetns(['timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port} && cat <&3`], creds);
  return r.stdout.trim();
}

/** The answer to a UDP datagram to host:port (head reads it whole; bash's read would take one byte of it). */
async function dialUdp(host: string, port: number, creds: string[] = []): Promise<string> {
  const script = `exec 3<>/dev/udp/${host}/${port} && printf query >&3 && head -n 1 <&3`;
  const r = await inNetns(['timeout', '5', 'bash', '-c', script], creds);
  return r.stdout.trim();
}

const AS_PROXY_USER = ['--reuid=1337', '--regid=1000'];
/** pilot-agent's credentials in sidecar mode: root, group 1337. */
const AS_PROXY_GROUP = ['--reuid=0', '--regid=1337'];

let listeners: ChildProcess | undefined;
let work = '';
let applied = '';

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'krun-capture-'));
  await exec('ip', ['netns', 'add', NETNS]);
  for (const args of [
    ['link', 'set', 'lo', 'up'],
    ['addr', 'add', `${APP_IP}/32`, 'dev', 'lo'],
    ['addr', 'add', `${NAMESERVER}/32`, 'dev', 'lo'],
  ]) {
    await exec('ip', ['-n', NETNS, ...args]);
  }
  const resolvConf = join(work, 'resolv.conf');
  await writeFile(resolvConf, `search svc.cluster.local\nnameserver ${NAMESERVER}\noptions ndots:5\n`);
  // As `krun run` would be configured: capture everything, never port 5432, iptables-restore from the fixture.
  const r = await inNetns([process.execPath, APPLY, resolvConf], [], {
    ...iptables.env,
    KRUN_IPTABLES_RESTORE: iptables.restore,
    OUTBOUND_PORTS_EXCLUDE: '5432',
  });
  applied = r.stdout;
  listeners = spawn(
    'ip',
    [
      'netns',
      'exec',
      NETNS,
      process.execPath,
      LISTENERS,
      'tcp:127.0.0.1:15001:capture',
      `tcp:${APP_IP}:8080:direct 8080`,
      `tcp:${APP_IP}:5432:direct 5432`,
      'udp:127.0.0.1:15053:dns proxy',
      'tcp:127.0.0.1:15053:dns proxy tcp',
      `udp:${NAMESERVER}:53:upstream dns`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    listeners?.stdout?.once('data', () => resolve());
    listeners?.once('exit', (code) => reject(new Error(`listeners exited with ${code}`)));
  });
});

after(async () => {
  listeners?.kill();
  await exec('ip', ['netns', 'del', NETNS]).catch(() => {});
  await rm(work, { recursive: true, force: true });
});

describe('sidecar capture in a network namespace', () => {
  test('the namespace has only loopback: nothing the test sends can leave it', async () => {
    const { stdout } = await exec('ip', ['-n', NETNS, '-o', 'link', 'show']);
    assert.deepEqual(
      stdout
        .trim()
        .split('\n')
        .map((l) => l.split(':')[1]?.trim()),
      ['lo'],
    );
  });

  test('iptables-save shows exactly the rules krun applied', async () => {
    const { stdout } = await inNetns([iptables.save, '-t', 'nat'], [], iptables.env);
    const saved = stdout.split('\n').filter((l) => l && !l.startsWith('#'));
    const rules = [
      '-A OUTPUT -j ISTIO_OUTPUT',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      `-A ISTIO_OUTPUT -d ${NAMESERVER}/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053`,
      `-A ISTIO_OUTPUT -d ${NAMESERVER}/32 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053`,
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15008 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15009 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15022 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -j RETURN',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    ];
    assert.deepEqual(saved, [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':ISTIO_OUTPUT - [0:0]',
      ':ISTIO_REDIRECT - [0:0]',
      ...rules,
      'COMMIT',
    ]);
    assert.deepEqual(
      applied.split('\n').filter((l) => l.startsWith('-A')),
      rules,
    );
  });

  test('the app’s TCP connection lands on 15001 with its original destination recoverable', async () => {
    assert.equal(await dialTcp(APP_IP, 8080), `capture ${APP_IP}:8080`);
  });

  test('UID 1337 and GID 1337 (the agent) connect directly', async () => {
    assert.equal(await dialTcp(APP_IP, 8080, AS_PROXY_USER), 'direct 8080');
    assert.equal(await dialTcp(APP_IP, 8080, AS_PROXY_GROUP), 'direct 8080');
  });

  test('an excluded port is not captured', async () => {
    assert.equal(await dialTcp(APP_IP, 5432), 'direct 5432');
  });

  test('DNS to the resolv.conf nameserver goes to the DNS proxy on 15053; the agent’s own queries go upstream', async () => {
    assert.equal(await dialUdp(NAMESERVER, 53), 'dns proxy');
    assert.equal(await dialTcp(NAMESERVER, 53), 'dns proxy tcp');
    assert.equal(await dialUdp(NAMESERVER, 53, AS_PROXY_GROUP), 'upstream dns');
  });
});
