import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { captureRules } from '../../src/lib/mesh/iptables.ts';

describe('captureRules', () => {
  test('all ranges, user ports excluded with 15008/15009/15022, UID/GID 1337 excluded, DNS to 15053', () => {
    const rules = captureRules({
      includeRanges: ['*'],
      excludePorts: [5432, 15009],
      proxyUid: 1337,
      proxyGid: 1337,
      dnsCapture: true,
    });
    assert.equal(
      rules,
      [
        '*nat',
        ':ISTIO_OUTPUT - [0:0]',
        ':ISTIO_REDIRECT - [0:0]',
        '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
        '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp --dport 15008 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp --dport 15009 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp --dport 15022 -j RETURN',
        '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
        '-A ISTIO_OUTPUT -j RETURN',
        '-A OUTPUT -p udp --dport 53 -m owner --uid-owner 1337 -j RETURN',
        '-A OUTPUT -p udp --dport 53 -m owner --gid-owner 1337 -j RETURN',
        '-A OUTPUT -p udp --dport 53 -j REDIRECT --to-ports 15053',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });
  test('configured ranges only, no DNS capture', () => {
    const rules = captureRules({
      includeRanges: ['10.0.0.0/8', '192.168.0.0/16'],
      excludePorts: [],
      proxyUid: 1337,
      proxyGid: 1337,
      dnsCapture: false,
    });
    assert.deepEqual(rules.split('\n').slice(11), [
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 192.168.0.0/16 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -j RETURN',
      'COMMIT',
      '',
    ]);
  });
});
