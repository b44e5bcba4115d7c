import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ip6tablesRestoreOf } from '../../src/lib/mesh/capture.ts';
import { captureRules, nameservers } from '../../src/lib/mesh/iptables.ts';

describe('captureRules', () => {
  test('all ranges, user ports excluded with 15008/15009/15022, UID/GID 1337 excluded, DNS of the nameservers to 15053', () => {
    const rules = captureRules({
      includeRanges: ['*'],
      excludeRanges: [],
      excludePorts: [5432, 15009],
      proxyUid: 1337,
      proxyGid: 1337,
      dnsServers: ['10.96.0.10', '169.254.169.254'],
    });
    assert.equal(
      rules,
      [
        '*nat',
        ':ISTIO_OUTPUT - [0:0]',
        ':ISTIO_REDIRECT - [0:0]',
        '-A OUTPUT -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -d 10.96.0.10/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053',
        '-A ISTIO_OUTPUT -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053',
        '-A ISTIO_OUTPUT -d 169.254.169.254/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053',
        '-A ISTIO_OUTPUT -d 169.254.169.254/32 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053',
        '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15008 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15009 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15022 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp -j ISTIO_REDIRECT',
        '-A ISTIO_OUTPUT -j RETURN',
        '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  test('configured ranges only, no DNS capture', () => {
    const rules = captureRules({
      includeRanges: ['10.0.0.0/8', '192.168.0.7'],
      excludeRanges: [],
      excludePorts: [],
      proxyUid: 1337,
      proxyGid: 1337,
      dnsServers: undefined,
    });
    assert.deepEqual(rules.split('\n').slice(9), [
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15022 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -p tcp -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 192.168.0.7/32 -p tcp -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -j RETURN',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      'COMMIT',
      '',
    ]);
    assert.ok(!rules.includes('--dport 53'), rules);
  });

  test('a resolv.conf without nameservers captures port 53 to any address', () => {
    const rules = captureRules({
      includeRanges: ['*'],
      excludeRanges: [],
      excludePorts: [],
      proxyUid: 1337,
      proxyGid: 1337,
      dnsServers: [],
    });
    assert.deepEqual(
      rules.split('\n').filter((l) => l.includes('--dport 53')),
      [
        '-A ISTIO_OUTPUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053',
        '-A ISTIO_OUTPUT -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053',
      ],
    );
  });
});

describe('captureRules, IPv6 and excluded CIDRs', () => {
  const options = {
    includeRanges: ['10.0.0.0/8', 'fd00:1::/64', '2001:db8::7'],
    excludeRanges: ['169.254.169.254/32', 'fd00:1::99', '10.1.0.0/16'],
    excludePorts: [5432],
    proxyUid: 1337,
    proxyGid: 1337,
    dnsServers: ['10.96.0.10', 'fd00::10'],
  };

  test('IPv4 rules take the IPv4 ranges, exclusions and nameservers, excluded CIDRs before the ports', () => {
    assert.deepEqual(captureRules(options, 4).split('\n').slice(6, 16), [
      '-A ISTIO_OUTPUT -d 10.96.0.10/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 169.254.169.254/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15008 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15009 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15022 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -p tcp -j ISTIO_REDIRECT',
    ]);
  });

  test('IPv6 rules (ip6tables-restore input): ::1, the IPv6 ranges, exclusions and nameservers', () => {
    const v4 = captureRules(options, 4).split('\n');
    const v6 = captureRules(options, 6).split('\n');
    assert.deepEqual(v6.slice(0, 6), v4.slice(0, 6), 'the same chains and owner exclusions');
    assert.deepEqual(v6.slice(6), [
      '-A ISTIO_OUTPUT -d fd00::10/128 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT -d fd00::10/128 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT -d ::1/128 -j RETURN',
      '-A ISTIO_OUTPUT -d fd00:1::99/128 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15008 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15009 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15022 -j RETURN',
      '-A ISTIO_OUTPUT -d fd00:1::/64 -p tcp -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 2001:db8::7/128 -p tcp -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -j RETURN',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      'COMMIT',
      '',
    ]);
  });

  test('IPv4 nameservers only: no DNS rule in the IPv6 set (and no nameserver at all: port 53 anywhere in both)', () => {
    const v4only = { ...options, dnsServers: ['10.96.0.10'] };
    assert.ok(!captureRules(v4only, 6).includes('--dport 53'));
    const none = { ...options, dnsServers: [] };
    for (const family of [4, 6] as const) {
      assert.match(captureRules(none, family), /-A ISTIO_OUTPUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053/);
    }
  });
});

describe('ip6tablesRestoreOf', () => {
  test('the same flavour, in the same place', () => {
    assert.equal(ip6tablesRestoreOf('iptables-restore'), 'ip6tables-restore');
    assert.equal(ip6tablesRestoreOf('/usr/sbin/iptables-legacy-restore'), '/usr/sbin/ip6tables-legacy-restore');
    assert.equal(ip6tablesRestoreOf('/opt/x/iptables-nft-restore'), '/opt/x/ip6tables-nft-restore');
  });
});

describe('nameservers', () => {
  test('nameservers of both families in order, without comments or duplicates', () => {
    const conf = [
      '# generated',
      'search shop.svc.cluster.local svc.cluster.local',
      'nameserver 10.96.0.10',
      'nameserver   fd00::10',
      '; nameserver 10.0.0.99',
      'nameserver 10.96.0.10',
      'nameserver 8.8.8.8 # fallback',
      'options ndots:5',
    ].join('\n');
    assert.deepEqual(nameservers(conf), ['10.96.0.10', 'fd00::10', '8.8.8.8']);
    assert.deepEqual(nameservers(''), []);
  });
});
