import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { captureRules, nameservers } from '../../src/lib/mesh/iptables.ts';

describe('captureRules', () => {
  test('all ranges, user ports excluded with 15008/15009/15022, UID/GID 1337 excluded, DNS of the nameservers to 15053', () => {
    const rules = captureRules({
      includeRanges: ['*'],
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

describe('nameservers', () => {
  test('IPv4 nameservers in order, without comments, duplicates or IPv6', () => {
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
    assert.deepEqual(nameservers(conf), ['10.96.0.10', '8.8.8.8']);
    assert.deepEqual(nameservers(''), []);
  });
});
