// Sidecar mode's outbound capture applied for real, IPv4 and IPv6: Debian's iptables and ip6tables (from the
// fixtures cache) run by captureOutbound, the call `krun run` makes as root, inside a network namespace this test
// creates with only a loopback interface (nothing can leave it). Asserted with iptables-save/ip6tables-save and by
// connections made in the namespace.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/lib/log/logger.ts';
import { CaptureError, captureOutbound } from '../../src/lib/mesh/capture.ts';
import { captureRules } from '../../src/lib/mesh/iptables.ts';
import { ensureIptables } from '../support/fixtures/iptables.ts';
import { krunCapture, savedNat } from './support/capture-rules.ts';
import { AS_PROXY_GROUP, AS_PROXY_USER, TestNetns } from './support/netns.ts';

const iptables = await ensureIptables((line) => process.stderr.write(`[iptables fixture] ${line}\n`));
const APP_IP = '10.9.0.1';
const NAMESERVER = '10.9.0.53';
const APP_IP6 = 'fd00:9::1';
const NAMESERVER6 = 'fd00:9::53';
const APPLY = new URL('./support/apply-capture.ts', import.meta.url).pathname;
const LISTENERS = new URL('./support/netns-listeners.ts', import.meta.url).pathname;

let netns: TestNetns;
let work = '';
let applied: { ipv4: string; ipv6?: string } = { ipv4: '' };

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'krun-capture-'));
  netns = await TestNetns.create(`krun-capture-${process.pid}`, [APP_IP, NAMESERVER, APP_IP6, NAMESERVER6]);
  const resolvConf = join(work, 'resolv.conf');
  await writeFile(
    resolvConf,
    `search svc.cluster.local\nnameserver ${NAMESERVER}\nnameserver ${NAMESERVER6}\noptions ndots:5\n`,
  );
  // As `krun run` would be configured: capture everything, never port 5432, iptables-restore from the fixture; twice,
  // as a krun restarted in the same namespace would.
  for (let run = 0; run < 2; run++) {
    const r = await netns.exec([process.execPath, APPLY, resolvConf], [], {
      ...iptables.env,
      KRUN_IPTABLES_RESTORE: iptables.restore,
      OUTBOUND_PORTS_EXCLUDE: '5432',
    });
    applied = JSON.parse(r.stdout);
  }
  await netns.serve([
    process.execPath,
    LISTENERS,
    'tcp:127.0.0.1:15001:capture',
    `tcp:${APP_IP}:8080:direct 8080`,
    `tcp:${APP_IP}:5432:direct 5432`,
    'udp:127.0.0.1:15053:dns proxy',
    'tcp:127.0.0.1:15053:dns proxy tcp',
    `udp:${NAMESERVER}:53:upstream dns`,
    'tcp:[::1]:15001:capture',
    `tcp:[${APP_IP6}]:8080:direct v6 8080`,
    `tcp:[${APP_IP6}]:5432:direct v6 5432`,
    'udp:[::1]:15053:dns proxy v6',
    `udp:[${NAMESERVER6}]:53:upstream dns v6`,
  ]);
});

after(async () => {
  await netns?.destroy();
  await rm(work, { recursive: true, force: true });
});

describe('sidecar capture in a network namespace', () => {
  test('the namespace has only loopback: nothing the test sends can leave it', async () => {
    assert.deepEqual(await netns.links(), ['lo']);
  });

  test('iptables-save shows exactly the rules krun applied, once after two runs', async () => {
    const { stdout } = await netns.exec([iptables.save, '-t', 'nat'], [], iptables.env);
    const expected = savedNat(krunCapture([NAMESERVER, NAMESERVER6], [5432]));
    assert.deepEqual(
      stdout.split('\n').filter((l) => l && !l.startsWith('#')),
      expected,
    );
    assert.deepEqual(
      applied.ipv4.split('\n').filter((l) => l.startsWith('-A')),
      expected.filter((l) => l.startsWith('-A')),
    );
  });

  test('ip6tables-save shows the IPv6 twin: ::1 and the IPv6 nameserver instead of the IPv4 ones', async () => {
    const { stdout } = await netns.exec([iptables.save6, '-t', 'nat'], [], iptables.env);
    const expected = savedNat(krunCapture([NAMESERVER, NAMESERVER6], [5432]), 6);
    assert.deepEqual(
      stdout.split('\n').filter((l) => l && !l.startsWith('#')),
      expected,
    );
    assert.deepEqual(
      expected.filter((l) => /-d |dport 53/.test(l)),
      [
        `-A ISTIO_OUTPUT -d ${NAMESERVER6}/128 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053`,
        `-A ISTIO_OUTPUT -d ${NAMESERVER6}/128 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053`,
        '-A ISTIO_OUTPUT -d ::1/128 -j RETURN',
      ],
    );
    assert.equal(applied.ipv6, captureRules(krunCapture([NAMESERVER, NAMESERVER6], [5432]), 6));
  });

  test('IPv6: the app’s connection lands on [::1]:15001 with its original destination; 1337 and excluded ports go direct', async () => {
    assert.equal(await netns.dialTcp(APP_IP6, 8080), `capture [${APP_IP6}]:8080`);
    assert.equal(await netns.dialTcp(APP_IP6, 8080, AS_PROXY_USER), 'direct v6 8080');
    assert.equal(await netns.dialTcp(APP_IP6, 8080, AS_PROXY_GROUP), 'direct v6 8080');
    assert.equal(await netns.dialTcp(APP_IP6, 5432), 'direct v6 5432');
  });

  test('IPv6: DNS to the IPv6 nameserver goes to the DNS proxy; the agent’s own queries go upstream', async () => {
    assert.equal(await netns.dialUdp(NAMESERVER6, 53), 'dns proxy v6');
    assert.equal(await netns.dialUdp(NAMESERVER6, 53, AS_PROXY_GROUP), 'upstream dns v6');
  });

  test('the app’s TCP connection lands on 15001 with its original destination recoverable', async () => {
    assert.equal(await netns.dialTcp(APP_IP, 8080), `capture ${APP_IP}:8080`);
  });

  test('UID 1337 and GID 1337 (the agent) connect directly', async () => {
    assert.equal(await netns.dialTcp(APP_IP, 8080, AS_PROXY_USER), 'direct 8080');
    assert.equal(await netns.dialTcp(APP_IP, 8080, AS_PROXY_GROUP), 'direct 8080');
  });

  test('an excluded port is not captured', async () => {
    assert.equal(await netns.dialTcp(APP_IP, 5432), 'direct 5432');
  });

  test('an iptables-restore that fails is an error naming it, with what to do', async () => {
    const config = (binary: string) => ({
      iptablesRestore: { value: binary, source: 'env KRUN_IPTABLES_RESTORE' },
      outboundIpRangesInclude: { value: ['*'], source: 'default' },
      outboundIpRangesExclude: { value: [], source: 'unset' },
      outboundPortsExclude: { value: [], source: 'unset' },
    });
    for (const [binary, why] of [
      ['/bin/false', '/bin/false exited with 1'],
      [join(work, 'missing'), `${join(work, 'missing')} spawn ${join(work, 'missing')} ENOENT`],
    ] as const) {
      await assert.rejects(captureOutbound(config(binary), join(work, 'resolv.conf'), {}, silentLogger), (err) => {
        assert.ok(err instanceof CaptureError);
        assert.equal(err.message, `can't apply the outbound capture: ${why}`);
        assert.match(err.hints.join('\n'), /ISTIO_META_INTERCEPTION_MODE=NONE/);
        return true;
      });
    }
  });

  test('DNS to the resolv.conf nameserver goes to the DNS proxy on 15053; the agent’s own queries go upstream', async () => {
    assert.equal(await netns.dialUdp(NAMESERVER, 53), 'dns proxy');
    assert.equal(await netns.dialTcp(NAMESERVER, 53), 'dns proxy tcp');
    assert.equal(await netns.dialUdp(NAMESERVER, 53, AS_PROXY_GROUP), 'upstream dns');
  });
});
