// The per-node decision of `krun runtime plan` (pure): every container runtime a node may report, and why the
// unsupported ones are refused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KONTAIN, type RuntimeDefinition } from '../../src/lib/runtime/definitions.ts';
import { formatPlan, parseRuntimeVersion, planNode, planNodes } from '../../src/lib/runtime/plan.ts';
import { nodeObject } from './nodes.ts';

const plan = (runtime: string, extra: Partial<Parameters<typeof nodeObject>[0]> = {}) =>
  planNode(nodeObject({ name: 'n1', runtime, ...extra }), KONTAIN);

describe('runtime plan decisions', () => {
  test('containerd 1.x edits config.toml in place', () => {
    // Given/When a node with containerd 1.6 or 1.7
    for (const v of ['containerd://1.6.20', 'containerd://1.7.27']) {
      // Then
      assert.deepEqual(plan(v), {
        node: 'n1',
        containerRuntimeVersion: v,
        os: 'linux',
        architecture: 'amd64',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        method: 'containerd-config',
        config: '/etc/containerd/config.toml',
        unit: 'containerd',
        labelled: false,
        handlerReported: false,
      });
    }
  });

  test('containerd 2.0 and 2.1 get a config.d drop-in; 2.2 and later conf.d', () => {
    // Given/When/Then
    assert.equal(plan('containerd://2.0.5').method, 'containerd-dropin');
    assert.equal(plan('containerd://2.0.5').dropIn, '/etc/containerd/config.d/krun-kontain.toml');
    assert.equal(plan('containerd://2.1.4').dropIn, '/etc/containerd/config.d/krun-kontain.toml');
    assert.equal(plan('containerd://2.2.2-bd1.34').dropIn, '/etc/containerd/conf.d/krun-kontain.toml');
    assert.equal(plan('containerd://2.2.2-bd1.34').config, '/etc/containerd/config.toml');
  });

  test('CRI-O gets a crio.conf.d file', () => {
    const p = plan('cri-o://1.30.4');
    assert.equal(p.method, 'crio-dropin');
    assert.equal(p.dropIn, '/etc/crio/crio.conf.d/99-krun-kontain.conf');
    assert.equal(p.unit, 'crio');
    assert.equal(p.config, undefined);
  });

  test('unsupported nodes are named with the reason', () => {
    const reasons = {
      'docker://24.0.7': 'docker (dockershim) was removed in Kubernetes 1.24; the node needs containerd or CRI-O',
      'containerd://2.1.5-k3s1':
        "k3s and rke2 generate containerd's config from their own template (config.toml.tmpl); not supported yet",
      'containerd://1.4.13': 'containerd 1.4 is older than 1.6, the oldest krun supports',
      'containerd://3.0.0': 'containerd 3.0 is newer than krun knows how to configure',
      'frakti://1.0.0': 'unknown container runtime "frakti" (krun knows containerd and CRI-O)',
      containerd: 'can\'t parse the container runtime version "containerd"',
      '': 'kubelet reports no container runtime yet (status.nodeInfo.containerRuntimeVersion)',
    };
    for (const [runtime, reason] of Object.entries(reasons)) {
      const p = plan(runtime);
      assert.equal(p.method, undefined, runtime);
      assert.equal(p.reason, reason, runtime);
    }
    assert.equal(
      plan('containerd://1.7.27', { providerID: 'k3s://agent-1' }).reason,
      "k3s and rke2 generate containerd's config from their own template (config.toml.tmpl); not supported yet",
    );
    assert.equal(plan('containerd://1.7.27', { arch: 'arm64' }).reason, 'no kontain artifacts for arm64 (only amd64)');
    assert.equal(
      plan('containerd://1.7.27', { os: 'windows' }).reason,
      'kontain needs a Linux node (this one reports "windows")',
    );
  });

  test('a node labelled by an earlier install, and one whose kubelet reports the handler, say so', () => {
    const node = nodeObject({
      name: 'n1',
      runtime: 'cri-o://1.30.4',
      labels: { 'kontain.app/kontain-runtime': 'true' },
    });
    const withHandler = { ...node, status: { ...node.status, runtimeHandlers: [{ name: 'runc' }, { name: 'krun' }] } };
    const p = planNode(withHandler, KONTAIN);
    assert.equal(p.labelled, true);
    assert.equal(p.handlerReported, true);
  });

  test('a new definition is data: another handler, label and architectures change the plan, not the code', () => {
    // Given a made-up gVisor-like definition
    const gvisor: RuntimeDefinition = {
      ...KONTAIN,
      name: 'gvisor',
      handler: 'runsc',
      architectures: ['amd64', 'arm64'],
      nodeLabel: { key: 'example.com/gvisor', value: 'ready' },
    };
    // When planning an arm64 CRI-O node
    const p = planNode(nodeObject({ name: 'n1', runtime: 'cri-o://1.31.0', arch: 'arm64' }), gvisor);
    // Then
    assert.equal(p.method, 'crio-dropin');
    assert.equal(p.dropIn, '/etc/crio/crio.conf.d/99-krun-gvisor.conf');
  });

  test('version parsing keeps the distribution suffix', () => {
    assert.deepEqual(parseRuntimeVersion('containerd://2.1.5-k3s1'), {
      family: 'containerd',
      major: 2,
      minor: 1,
      suffix: '-k3s1',
    });
    assert.deepEqual(parseRuntimeVersion('cri-o://v1.30'), { family: 'cri-o', major: 1, minor: 30, suffix: '' });
  });

  test('the human plan is a table sorted by node', () => {
    // Given a mixed cluster
    const nodes = [
      nodeObject({ name: 'c', runtime: 'docker://24.0.7' }),
      nodeObject({ name: 'a', runtime: 'containerd://1.7.27', labels: { 'kontain.app/kontain-runtime': 'true' } }),
      nodeObject({ name: 'b', runtime: 'cri-o://1.30.4' }),
    ];
    // When/Then
    assert.equal(
      formatPlan(planNodes(nodes, KONTAIN)),
      [
        'NODE   RUNTIME               ARCH    INSTALL',
        'a      containerd://1.7.27   amd64   (installed) add the runtime to /etc/containerd/config.toml (backed up first), restart containerd',
        'b      cri-o://1.30.4        amd64   write /etc/crio/crio.conf.d/99-krun-kontain.conf, restart crio',
        'c      docker://24.0.7       amd64   unsupported: docker (dockershim) was removed in Kubernetes 1.24; the node needs containerd or CRI-O',
        '',
      ].join('\n'),
    );
    assert.equal(formatPlan(planNodes([], KONTAIN)), 'No nodes match; nothing to install kontain on.\n');
  });
});
