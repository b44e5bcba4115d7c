import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideMode, decideTdFlavour, type ModeFacts, type TdFacts } from '../../src/lib/mesh/mode.ts';

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

describe('decideTdFlavour (MESH=td:…)', () => {
  const tdEverything: TdFacts = {
    setting: 'auto',
    settingSource: 'default',
    isRoot: true,
    interceptionMode: 'REDIRECT',
    hasEnvoy: true,
    hasIptables: true,
  };
  const td = (over: Partial<TdFacts>) => decideTdFlavour({ ...tdEverything, ...over });
  test('root with iptables and Envoy: Envoy with capture, as the original', () => {
    assert.deepEqual(td({}), { flavour: 'envoy', reason: 'root, iptables and Envoy are available' });
  });
  test('otherwise the gRPC bootstrap, with the reason', () => {
    assert.deepEqual(td({ hasEnvoy: false }), { flavour: 'proxyless', reason: 'no Envoy binary' });
    assert.deepEqual(td({ interceptionMode: 'NONE' }), {
      flavour: 'proxyless',
      reason: 'ISTIO_META_INTERCEPTION_MODE is NONE',
    });
    assert.deepEqual(td({ isRoot: false }), {
      flavour: 'proxyless',
      reason: 'not running as root (iptables needs it)',
    });
    assert.deepEqual(td({ hasIptables: false }), { flavour: 'proxyless', reason: 'no iptables-restore binary' });
  });
  test('KRUN_MESH_MODE proxyless or sidecar chooses', () => {
    assert.deepEqual(td({ setting: 'proxyless', settingSource: 'env KRUN_MESH_MODE' }), {
      flavour: 'proxyless',
      reason: 'asked for by env KRUN_MESH_MODE',
    });
    assert.deepEqual(td({ setting: 'sidecar', settingSource: 'env KRUN_MESH_MODE', hasEnvoy: false }), {
      flavour: 'envoy',
      reason: 'asked for by env KRUN_MESH_MODE',
    });
  });
});
