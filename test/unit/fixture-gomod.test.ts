// The committed wrapper go.mod files must be what the generator makes from versions.ts: the staging replace list
// is derived from k8s.io/kubernetes's own go.mod, never typed or edited by hand.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { stagingModules, stagingVersion } from '../support/fixtures/gomod.ts';
import {
  ETCD_VERSION,
  ISTIO_DEPENDENCY_UPGRADES,
  ISTIO_VERSION,
  KUBERNETES_VERSION,
} from '../support/fixtures/versions.ts';

const read = (name: string) => readFileSync(new URL(`../fixtures/${name}/go.mod`, import.meta.url), 'utf8');

function block(gomod: string, keyword: string): string[] {
  const m = new RegExp(`^${keyword} \\(\\n([\\s\\S]*?)^\\)`, 'm').exec(gomod);
  return (m?.[1] ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

describe('fixture go.mod generation', () => {
  test('stagingModules picks exactly the v0.0.0 requirements', () => {
    const gomod = [
      'module k8s.io/kubernetes',
      'require (',
      '\tgithub.com/x/y v1.2.3',
      '\tk8s.io/api v0.0.0',
      '\tk8s.io/utils v0.0.0-20260319190234-28399d86e0b5',
      '\tk8s.io/client-go v0.0.0 // indirect',
      ')',
      'require k8s.io/kms v0.0.0',
    ].join('\n');
    assert.deepEqual(stagingModules(gomod), ['k8s.io/api', 'k8s.io/client-go', 'k8s.io/kms']);
    assert.equal(stagingVersion('v1.36.3'), 'v0.36.3');
    assert.throws(() => stagingVersion('1.36'), /not a Kubernetes release version/);
  });

  test('the k8s wrapper replaces every staging module with the release matching KUBERNETES_VERSION', () => {
    const gomod = read('k8s');
    const replaces = block(gomod, 'replace');
    assert.ok(replaces.length >= 29, `only ${replaces.length} replaces`);
    for (const line of replaces) {
      assert.match(
        line,
        new RegExp(`^(k8s\\.io/[\\w.-]+) => \\1 ${stagingVersion(KUBERNETES_VERSION).replaceAll('.', '\\.')}$`),
      );
    }
    assert.match(gomod, new RegExp(`^\\tk8s\\.io/kubernetes ${KUBERNETES_VERSION}( // indirect)?$`, 'm'));
    assert.match(gomod, new RegExp(`^\\tgo\\.etcd\\.io/etcd/server/v3 ${ETCD_VERSION}( // indirect)?$`, 'm'));
    assert.deepEqual(block(gomod, 'tool'), ['go.etcd.io/etcd/server/v3', 'k8s.io/kubernetes/cmd/kube-apiserver']);
  });

  test('the istio wrapper pins the Istio version and the served upgrades', () => {
    const gomod = read('istio');
    assert.match(gomod, new RegExp(`^\\tistio\\.io/istio ${ISTIO_VERSION}( // indirect)?$`, 'm'));
    for (const [module, version] of Object.entries(ISTIO_DEPENDENCY_UPGRADES)) {
      assert.match(
        gomod,
        new RegExp(`^\\t${module.replaceAll('.', '\\.')} ${version.replaceAll('.', '\\.')}( // indirect)?$`, 'm'),
      );
    }
    assert.deepEqual(block(gomod, 'tool'), [
      'istio.io/istio/pilot/cmd/pilot-agent',
      'istio.io/istio/pilot/cmd/pilot-discovery',
    ]);
  });
});
