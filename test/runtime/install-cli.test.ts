// `krun runtime install` as the built CLI against the real kube-apiserver. There is no kubelet, so Jobs never run:
// the test checks the objects created, simulates a Job's success through its status subresource, and re-runs.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { KONTAIN } from '../../src/lib/runtime/definitions.ts';
import { INSTALLER_SCRIPT, installerEnv } from '../../src/lib/runtime/installer.ts';
import { jobName } from '../../src/lib/runtime/objects.ts';
import { planNode } from '../../src/lib/runtime/plan.ts';
import { krun } from '../support/cli.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { statusOf, TestKube } from '../support/kube.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';
import { createNodes, nodeObject } from './nodes.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const work = await mkdtemp(join(tmpdir(), 'krun-runtime-install-'));
after(() => rm(work, { recursive: true, force: true }));
const env = {
  PATH: process.env.PATH,
  HOME: work,
  KUBECONFIG: writeKubeconfig(join(work, 'admin.kubeconfig'), plane.access),
};
const JOBS = '/apis/batch/v1/namespaces/kube-system/jobs';

interface Job {
  metadata: { name: string; annotations: Record<string, string> };
  spec: { template: { spec: Record<string, unknown> & { containers: { env: { name: string; value: string }[] }[] } } };
}

/** What the job controller and kubelet would have reported for a Job that ran to completion. */
async function simulateSuccess(name: string): Promise<void> {
  const job = await kube.get<Record<string, unknown>>(`${JOBS}/${name}`);
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await kube.request('PUT', `${JOBS}/${name}/status`, {
    ...job,
    status: {
      startTime: now,
      completionTime: now,
      succeeded: 1,
      conditions: [
        { type: 'SuccessCriteriaMet', status: 'True', lastProbeTime: now, lastTransitionTime: now },
        { type: 'Complete', status: 'True', lastProbeTime: now, lastTransitionTime: now },
      ],
    },
  });
}

describe('krun runtime install', () => {
  test('applies the RuntimeClass and a Job per supported node; labels a node once its Job succeeded; idempotent', async () => {
    // Given nodes with containerd 1.7, CRI-O and docker
    const nodes = await createNodes(kube, [
      { name: 'ctrd', runtime: 'containerd://1.7.27' },
      { name: 'crio', runtime: 'cri-o://1.30.4' },
      { name: 'docker', runtime: 'docker://24.0.7' },
    ]);
    const [ctrd, crio, docker] = nodes.names as [string, string, string];
    const install = () => krun(['runtime', 'install', 'kontain', '-l', nodes.selector], { cleanEnv: env });
    try {
      // When
      const r = await install();
      // Then the RuntimeClass, the script's ConfigMap and two Jobs are created; docker is skipped with the reason
      assert.equal(r.status, 0, r.stderr);
      const rc = await kube.get<Record<string, unknown>>('/apis/node.k8s.io/v1/runtimeclasses/kontain');
      const rcVerb = r.stdout.split('\n')[0];
      assert.match(rcVerb ?? '', /^runtimeclass\.node\.k8s\.io\/kontain (created|unchanged)$/);
      assert.equal(rc.handler, 'krun');
      assert.deepEqual(rc.scheduling, { nodeSelector: { 'kontain.app/kontain-runtime': 'true' } });
      const cm = await kube.get<{ data: Record<string, string> }>(
        '/api/v1/namespaces/kube-system/configmaps/krun-runtime-installer',
      );
      assert.equal(cm.data['runtime-installer.sh'], await readFile(INSTALLER_SCRIPT, 'utf8'));
      const ctrdJob = jobName(KONTAIN, 'install', ctrd);
      const crioJob = jobName(KONTAIN, 'install', crio);
      const [, cmLine, ...rest] = r.stdout.split('\n');
      assert.match(cmLine ?? '', /^configmap\/krun-runtime-installer (created|unchanged)$/); // shared with other tests
      assert.deepEqual(rest, [
        `job.batch/${crioJob} created`,
        `job.batch/${ctrdJob} created`,
        `node/${crio} waiting for job/${crioJob}`,
        `node/${ctrd} waiting for job/${ctrdJob}`,
        `node/${docker} skipped (docker (dockershim) was removed in Kubernetes 1.24; the node needs containerd or CRI-O)`,
        '',
      ]);
      // and each Job is pinned to its node, holds no token, and carries the node's decision
      const job = await kube.get<Job>(`${JOBS}/${ctrdJob}`);
      const pod = job.spec.template.spec;
      assert.equal(job.metadata.annotations['krun.dev/node'], ctrd);
      assert.equal(pod.automountServiceAccountToken, false);
      assert.equal(pod.serviceAccountName, undefined);
      assert.deepEqual(pod.affinity, {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [ctrd] }] }],
          },
        },
      });
      const expectedEnv = installerEnv(
        KONTAIN,
        planNode(nodeObject({ name: ctrd, runtime: 'containerd://1.7.27' }), KONTAIN),
      );
      assert.deepEqual(Object.fromEntries(pod.containers[0]?.env.map((e) => [e.name, e.value]) ?? []), expectedEnv);
      assert.equal(expectedEnv.KRUN_METHOD, 'containerd-config');
      assert.equal(await statusOf(kube.get(`${JOBS}/${jobName(KONTAIN, 'install', docker)}`)), 404);

      // When the containerd node's Job succeeds and install runs again
      await simulateSuccess(ctrdJob);
      const again = await install();
      // Then that node is labelled, the rest is unchanged
      assert.equal(again.status, 0, again.stderr);
      assert.deepEqual(again.stdout.split('\n'), [
        'runtimeclass.node.k8s.io/kontain unchanged',
        'configmap/krun-runtime-installer unchanged',
        `job.batch/${crioJob} unchanged`,
        `job.batch/${ctrdJob} unchanged`,
        `node/${crio} waiting for job/${crioJob}`,
        `node/${ctrd} labelled`,
        `node/${docker} skipped (docker (dockershim) was removed in Kubernetes 1.24; the node needs containerd or CRI-O)`,
        '',
      ]);
      const labelled = await kube.get<{ metadata: { labels: Record<string, string> } }>(`/api/v1/nodes/${ctrd}`);
      assert.equal(labelled.metadata.labels['kontain.app/kontain-runtime'], 'true');

      // When it runs a third time
      const third = await install();
      // Then the labelled node needs nothing more
      assert.equal(third.status, 0, third.stderr);
      assert.match(third.stdout, new RegExp(`^node/${ctrd} unchanged \\(installed\\)$`, 'm'));
    } finally {
      for (const name of nodes.names)
        await statusOf(kube.request('DELETE', `${JOBS}/${jobName(KONTAIN, 'install', name)}`));
      await nodes.remove();
    }
  });

  test('--dry-run=client -o yaml prints every object and creates nothing', async () => {
    // Given a CRI-O node
    const nodes = await createNodes(kube, [{ name: 'dry', runtime: 'cri-o://1.30.4' }]);
    const [dry] = nodes.names as [string];
    try {
      // When
      const r = await krun(['runtime', 'install', 'kontain', '-l', nodes.selector, '--dry-run=client', '-o', 'yaml'], {
        cleanEnv: env,
      });
      // Then
      assert.equal(r.status, 0, r.stderr);
      const list = parse(r.stdout) as { items: { kind: string; metadata: { name: string } }[] };
      assert.deepEqual(
        list.items.map((o) => `${o.kind}/${o.metadata.name}`),
        ['RuntimeClass/kontain', 'ConfigMap/krun-runtime-installer', `Job/${jobName(KONTAIN, 'install', dry)}`],
      );
      assert.equal(await statusOf(kube.get(`${JOBS}/${jobName(KONTAIN, 'install', dry)}`)), 404);
    } finally {
      await nodes.remove();
    }
  });
});
