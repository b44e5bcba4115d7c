// `krun runtime plan` as the built CLI against the real kube-apiserver, with Nodes of mixed runtimes made by the test.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { krun } from '../support/cli.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { TestKube } from '../support/kube.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';
import { createNodes } from './nodes.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const work = await mkdtemp(join(tmpdir(), 'krun-runtime-plan-'));
after(() => rm(work, { recursive: true, force: true }));
const env = {
  PATH: process.env.PATH,
  HOME: work,
  KUBECONFIG: writeKubeconfig(join(work, 'admin.kubeconfig'), plane.access),
};

describe('krun runtime plan', () => {
  test('prints per node how Kontain would be installed, or why not; -o yaml and -o json carry the same plan', async () => {
    // Given nodes with containerd 1.7, containerd 2.1, CRI-O and docker
    const nodes = await createNodes(kube, [
      { name: 'ctrd1', runtime: 'containerd://1.7.27' },
      { name: 'ctrd2', runtime: 'containerd://2.1.4' },
      { name: 'crio', runtime: 'cri-o://1.30.4' },
      { name: 'docker', runtime: 'docker://24.0.7' },
    ]);
    try {
      const [ctrd1, ctrd2, crio, docker] = nodes.names as [string, string, string, string];
      const col = (name: string) => name.padEnd(docker.length); // the longest name sets the column
      // When
      const r = await krun(['runtime', 'plan', 'kontain', '-l', nodes.selector], { cleanEnv: env });
      // Then
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal(
        r.stdout,
        [
          `${col('NODE')}   RUNTIME               ARCH    INSTALL`,
          `${col(crio)}   cri-o://1.30.4        amd64   write /etc/crio/crio.conf.d/99-krun-kontain.conf, restart crio`,
          `${col(ctrd1)}   containerd://1.7.27   amd64   add the runtime to /etc/containerd/config.toml (backed up first), restart containerd`,
          `${col(ctrd2)}   containerd://2.1.4    amd64   write /etc/containerd/config.d/krun-kontain.toml, import it from /etc/containerd/config.toml (backed up first), restart containerd`,
          `${col(docker)}   docker://24.0.7       amd64   unsupported: docker (dockershim) was removed in Kubernetes 1.24; the node needs containerd or CRI-O`,
          '',
        ].join('\n'),
      );

      // When asked for YAML and JSON
      const yaml = await krun(['runtime', 'plan', 'kontain', '-l', nodes.selector, '-o', 'yaml'], { cleanEnv: env });
      const json = await krun(['runtime', 'plan', 'kontain', '-o', 'json'], {
        cleanEnv: { ...env, KRUN_SELECTOR: nodes.selector },
      });
      // Then both are the same plan object
      assert.equal(yaml.status, 0, yaml.stderr);
      assert.equal(json.status, 0, json.stderr);
      const plan = parse(yaml.stdout);
      assert.deepEqual(JSON.parse(json.stdout), plan);
      assert.equal(plan.kind, 'RuntimePlan');
      assert.equal(plan.handler, 'krun');
      assert.deepEqual(
        plan.nodes.map((n: { node: string; method?: string }) => [n.node, n.method ?? null]),
        [
          [crio, 'crio-dropin'],
          [ctrd1, 'containerd-config'],
          [ctrd2, 'containerd-dropin'],
          [docker, null],
        ],
      );
    } finally {
      await nodes.remove();
    }
  });

  test('an unknown runtime is a usage error naming the known ones', async () => {
    const r = await krun(['runtime', 'plan', 'nope'], { cleanEnv: env });
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /unknown runtime "nope"/);
    assert.match(r.stderr, /krun runtime plan kontain/);
  });
});
