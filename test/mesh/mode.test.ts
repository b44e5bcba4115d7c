import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideMode, type ModeFacts } from '../../src/lib/mesh/mode.ts';

const everything: ModeFacts = {
  setting: 'auto',
  settingSource: 'default',
  cluster: true,
  isRoot: true,
  interceptionMode: 'REDIRECT',
  hasPilotAgent: true,
  hasEnvoy: true,
  hasIptables: true,
};
const decide = (over: Partial<ModeFacts>) => decideMode({ ...everything, ...over });

describe('decideMode', () => {
  test('root with iptables, pilot-agent and Envoy: sidecar with capture', () => {
    assert.deepEqual(decide({}), {
      mode: 'sidecar',
      reason: 'root, iptables, pilot-agent and Envoy are available',
    });
  });
  test('an explicit setting wins over what the machine offers', () => {
    assert.deepEqual(decide({ setting: 'proxyless', settingSource: 'env KRUN_MESH_MODE' }), {
      mode: 'proxyless',
      reason: 'asked for by env KRUN_MESH_MODE',
    });
    assert.deepEqual(decide({ setting: 'none', settingSource: 'flag --mesh-mode', cluster: false }), {
      mode: 'none',
      reason: 'asked for by flag --mesh-mode',
    });
  });
  test('no cluster: none', () => {
    assert.deepEqual(decide({ cluster: false }), { mode: 'none', reason: 'no cluster configured' });
  });
  test('no pilot-agent: none', () => {
    assert.deepEqual(decide({ hasPilotAgent: false }), { mode: 'none', reason: 'no pilot-agent binary' });
  });
  test('no Envoy: proxyless', () => {
    assert.deepEqual(decide({ hasEnvoy: false }), { mode: 'proxyless', reason: 'no Envoy binary' });
  });
  test('interception mode NONE: whitebox', () => {
    assert.deepEqual(decide({ interceptionMode: 'NONE' }), {
      mode: 'whitebox',
      reason: 'ISTIO_META_INTERCEPTION_MODE is NONE',
    });
  });
  test('not root: whitebox', () => {
    assert.deepEqual(decide({ isRoot: false }), {
      mode: 'whitebox',
      reason: 'not running as root (iptables needs it)',
    });
  });
  test('no iptables: whitebox', () => {
    assert.deepEqual(decide({ hasIptables: false }), { mode: 'whitebox', reason: 'no iptables-restore binary' });
  });
});
