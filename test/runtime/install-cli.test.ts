// `krun runtime install`, `status` and `uninstall` as the built CLI against the real kube-apiserver. There is no
// kubelet, so Jobs and DaemonSet pods never run: the tests check the objects created, simulate an installer's result
// through the status subresource, and re-run. Every test that touches the cluster-wide RuntimeClass `kontain` or the
// runtime's node label lives in this file: test files run in parallel, the tests of one file one after another.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { KONTAIN } from '../../src/lib/runtime/definitions.ts';
import { INSTALLER_SCRIPT, installerEnv } from '../../src/lib/runtime/installer.ts';
import { jobName, profileOf } from '../../src/lib/runtime/objects.ts';
import { planNode } from '../../src/lib/runtime/plan.ts';
import { krun, spawnKrun } from '../support/cli.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { statusOf, TestKube } from '../support/kube.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';
import { JOBS, PODS, simulateFailure, simulateSuccess } from './jobs.ts';
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

interface Job {
  metadata: { name: string; annotations: Record<string, string> };
  spec: { template: { spec: Record<string, unknown> & { containers: { env: { name: string; value: string }[] }[] } } };
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
      await simulateSuccess(kube, ctrdJob);
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

const RC = '/apis/node.k8s.io/v1/runtimeclasses/kontain';
const DOCKER_REASON = 'docker (dockershim) was removed in Kubernetes 1.24; the node needs containerd or CRI-O';

/** The rows of a kubectl-style table (columns are separated by three or more spaces). */
function rows(text: string): string[][] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => line.split(/ {3,}/));
}

async function labelsOf(node: string): Promise<Record<string, string>> {
  return (await kube.get<{ metadata: { labels: Record<string, string> } }>(`/api/v1/nodes/${node}`)).metadata.labels;
}

/** Deletes the runtime's Jobs of these nodes (no controller would). */
async function removeJobs(names: readonly string[]): Promise<void> {
  for (const name of names) {
    for (const action of ['install', 'revert'] as const) {
      await statusOf(kube.request('DELETE', `${JOBS}/${jobName(KONTAIN, action, name)}`));
    }
  }
}

describe('krun runtime status', () => {
  test('shows per node the method, the label and the last installer, before and after install and its results', async () => {
    // Given nodes with containerd 1.7, CRI-O and docker, and no RuntimeClass
    const nodes = await createNodes(kube, [
      { name: 'ctrd', runtime: 'containerd://1.7.27' },
      { name: 'crio', runtime: 'cri-o://1.30.4' },
      { name: 'docker', runtime: 'docker://24.0.7' },
    ]);
    const [ctrd, crio, docker] = nodes.names as [string, string, string];
    await statusOf(kube.request('DELETE', RC));
    const status = () => krun(['runtime', 'status', 'kontain', '-l', nodes.selector], { cleanEnv: env });
    const header = ['NODE', 'RUNTIME', 'METHOD', 'LABELLED', 'LAST INSTALLER', 'STATUS'];
    const crioLogs = `kubectl -n kube-system logs job/${jobName(KONTAIN, 'install', crio)}`;
    try {
      // When nothing is installed
      const before = await status();
      // Then
      assert.equal(before.status, 0, before.stderr);
      assert.equal(before.stderr, '');
      assert.deepEqual(rows(before.stdout), [
        ['runtimeclass.node.k8s.io/kontain: not found'],
        header,
        [crio, 'cri-o://1.30.4', 'crio-dropin', 'no', '<none>', 'not installed'],
        [ctrd, 'containerd://1.7.27', 'containerd-config', 'no', '<none>', 'not installed'],
        [docker, 'docker://24.0.7', '<none>', 'no', '<none>', `unsupported: ${DOCKER_REASON}`],
      ]);

      // When install created the Jobs, which haven't finished
      const install = await krun(['runtime', 'install', 'kontain', '-l', nodes.selector], { cleanEnv: env });
      assert.equal(install.status, 0, install.stderr);
      const running = await status();
      // Then
      assert.equal(running.status, 0, running.stderr);
      assert.deepEqual(rows(running.stdout).slice(0, 4), [
        ['runtimeclass.node.k8s.io/kontain: handler krun, for nodes labelled kontain.app/kontain-runtime=true'],
        header,
        [crio, 'cri-o://1.30.4', 'crio-dropin', 'no', 'install running', 'installing'],
        [ctrd, 'containerd://1.7.27', 'containerd-config', 'no', 'install running', 'installing'],
      ]);

      // When the containerd node's Job succeeds and the CRI-O node's Job fails
      await simulateSuccess(kube, jobName(KONTAIN, 'install', ctrd));
      await simulateFailure(kube, jobName(KONTAIN, 'install', crio));
      const finished = await status();
      // Then status says what is left to do
      assert.equal(finished.status, 0, finished.stderr);
      assert.deepEqual(rows(finished.stdout).slice(2, 4), [
        [
          crio,
          'cri-o://1.30.4',
          'crio-dropin',
          'no',
          'install failed',
          `install failed: Job has reached the specified backoff limit (${crioLogs})`,
        ],
        [
          ctrd,
          'containerd://1.7.27',
          'containerd-config',
          'no',
          'install succeeded',
          'installed, not labelled yet: run krun runtime install kontain',
        ],
      ]);

      // When install runs again
      const again = await krun(['runtime', 'install', 'kontain', '-l', nodes.selector], { cleanEnv: env });
      // Then it labels the containerd node and fails naming the CRI-O node and where its logs are
      assert.equal(again.status, 1);
      assert.match(again.stdout, new RegExp(`^node/${ctrd} labelled$`, 'm'));
      assert.match(
        again.stdout,
        new RegExp(
          `^node/${crio} failed: job/${jobName(KONTAIN, 'install', crio)} Job has reached the specified backoff limit$`,
          'm',
        ),
      );
      assert.match(again.stderr, new RegExp(`the kontain installer failed on node ${crio}`));
      assert.ok(again.stderr.includes(crioLogs), again.stderr);
      // and status shows the containerd node installed, also as JSON
      const json = await krun(['runtime', 'status', 'kontain', '-l', nodes.selector, '-o', 'json'], {
        cleanEnv: env,
      });
      assert.equal(json.status, 0, json.stderr);
      const report = JSON.parse(json.stdout);
      assert.equal(report.kind, 'RuntimeStatus');
      assert.deepEqual(report.runtimeClass, { name: 'kontain', found: true, handler: 'krun' });
      const node = report.nodes.find((n: { node: string }) => n.node === ctrd);
      assert.equal(node.state, 'installed');
      assert.equal(node.labelled, true);
      assert.equal(node.method, 'containerd-config');
      assert.equal(node.installer.object, `job/${jobName(KONTAIN, 'install', ctrd)}`);
      assert.equal(node.installer.phase, 'succeeded');
    } finally {
      await removeJobs(nodes.names);
      await nodes.remove();
    }
  });
});

describe('krun runtime uninstall', () => {
  test('applies revert Jobs, unlabels nodes whose revert succeeded, deletes the RuntimeClass; idempotent', async () => {
    // Given Kontain installed on a containerd and a CRI-O node, and a docker node
    const nodes = await createNodes(kube, [
      { name: 'ctrd', runtime: 'containerd://1.7.27' },
      { name: 'crio', runtime: 'cri-o://1.30.4' },
      { name: 'docker', runtime: 'docker://24.0.7' },
    ]);
    const [ctrd, crio, docker] = nodes.names as [string, string, string];
    const install = () => krun(['runtime', 'install', 'kontain', '-l', nodes.selector], { cleanEnv: env });
    const uninstall = () => krun(['runtime', 'uninstall', 'kontain', '-l', nodes.selector], { cleanEnv: env });
    const job = (action: 'install' | 'revert', node: string) => jobName(KONTAIN, action, node);
    try {
      assert.equal((await install()).status, 0);
      await simulateSuccess(kube, job('install', ctrd));
      await simulateSuccess(kube, job('install', crio));
      assert.equal((await install()).status, 0);
      assert.equal((await labelsOf(ctrd))['kontain.app/kontain-runtime'], 'true');

      // When
      const first = await uninstall();
      // Then each installed node's install Job is replaced by a revert Job; labels and the RuntimeClass stay
      assert.equal(first.status, 0, first.stderr);
      assert.deepEqual(first.stdout.split('\n'), [
        'configmap/krun-runtime-installer unchanged',
        `job.batch/${job('install', crio)} deleted`,
        `job.batch/${job('revert', crio)} created`,
        `node/${crio} waiting for job/${job('revert', crio)}`,
        `job.batch/${job('install', ctrd)} deleted`,
        `job.batch/${job('revert', ctrd)} created`,
        `node/${ctrd} waiting for job/${job('revert', ctrd)}`,
        `node/${docker} skipped (${DOCKER_REASON})`,
        'runtimeclass.node.k8s.io/kontain kept (2 nodes still labelled)',
        '',
      ]);
      assert.equal(await statusOf(kube.get(`${JOBS}/${job('install', ctrd)}`)), 404);
      const revert = await kube.get<Job>(`${JOBS}/${job('revert', ctrd)}`);
      const container = revert.spec.template.spec.containers[0] as Job['spec']['template']['spec']['containers'][0] & {
        command: string[];
      };
      assert.deepEqual(container.command, ['sh', '/krun/runtime-installer.sh', 'revert', '/host']);
      assert.deepEqual(
        Object.fromEntries(container.env.map((e) => [e.name, e.value])),
        installerEnv(KONTAIN, planNode(nodeObject({ name: ctrd, runtime: 'containerd://1.7.27' }), KONTAIN)),
      );
      assert.equal(revert.spec.template.spec.automountServiceAccountToken, false);
      assert.equal((await labelsOf(crio))['kontain.app/kontain-runtime'], 'true');

      // When both revert Jobs succeed and uninstall runs again
      await simulateSuccess(kube, job('revert', crio));
      await simulateSuccess(kube, job('revert', ctrd));
      const second = await uninstall();
      // Then the labels go, and with no labelled node left, the RuntimeClass
      assert.equal(second.status, 0, second.stderr);
      assert.deepEqual(second.stdout.split('\n'), [
        'configmap/krun-runtime-installer unchanged',
        `job.batch/${job('revert', crio)} unchanged`,
        `node/${crio} unlabelled`,
        `job.batch/${job('revert', ctrd)} unchanged`,
        `node/${ctrd} unlabelled`,
        `node/${docker} skipped (${DOCKER_REASON})`,
        'runtimeclass.node.k8s.io/kontain deleted',
        '',
      ]);
      assert.equal((await labelsOf(crio))['kontain.app/kontain-runtime'], undefined);
      assert.equal((await labelsOf(ctrd))['kontain.app/kontain-runtime'], undefined);
      assert.equal(await statusOf(kube.get(RC)), 404);

      // When it runs a third time
      const third = await uninstall();
      // Then nothing changes
      assert.equal(third.status, 0, third.stderr);
      assert.deepEqual(third.stdout.split('\n'), [
        'configmap/krun-runtime-installer unchanged',
        `job.batch/${job('revert', crio)} unchanged`,
        `node/${crio} unchanged (reverted)`,
        `job.batch/${job('revert', ctrd)} unchanged`,
        `node/${ctrd} unchanged (reverted)`,
        `node/${docker} skipped (${DOCKER_REASON})`,
        'runtimeclass.node.k8s.io/kontain unchanged (not found)',
        '',
      ]);
      const status = await krun(['runtime', 'status', 'kontain', '-l', nodes.selector], { cleanEnv: env });
      assert.deepEqual(rows(status.stdout)[3], [
        ctrd,
        'containerd://1.7.27',
        'containerd-config',
        'no',
        'revert succeeded',
        'not installed (reverted)',
      ]);

      // When Kontain is installed again
      const reinstall = await install();
      // Then the revert Jobs make way for new install Jobs
      assert.equal(reinstall.status, 0, reinstall.stderr);
      assert.deepEqual(reinstall.stdout.split('\n').slice(0, 6), [
        `job.batch/${job('revert', crio)} deleted`,
        `job.batch/${job('revert', ctrd)} deleted`,
        'runtimeclass.node.k8s.io/kontain created',
        'configmap/krun-runtime-installer unchanged',
        `job.batch/${job('install', crio)} created`,
        `job.batch/${job('install', ctrd)} created`,
      ]);
      assert.equal(await statusOf(kube.get(`${JOBS}/${job('revert', ctrd)}`)), 404);
    } finally {
      await removeJobs(nodes.names);
      await nodes.remove();
    }
  });
});

interface DaemonSet {
  metadata: { name: string };
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: Record<string, unknown> & {
        initContainers: { name: string; command: string[]; env: { name: string; value: string }[] }[];
        containers: { name: string; image: string }[];
      };
    };
  };
}

/** The pod the DaemonSet controller would have made on `node`, its installer init container exited with `code`. */
async function simulateDaemonPod(ds: DaemonSet, node: string, code: number): Promise<string> {
  await statusOf(kube.post('/api/v1/namespaces/kube-system/serviceaccounts', { metadata: { name: 'default' } }));
  const pod = await kube.post<{ metadata: { name: string } }>(PODS, {
    metadata: { generateName: `${ds.metadata.name}-`, labels: ds.spec.template.metadata.labels },
    spec: { ...ds.spec.template.spec, nodeName: node },
  });
  const live = await kube.get<Record<string, unknown>>(`${PODS}/${pod.metadata.name}`);
  const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const terminated = { exitCode: code, reason: code === 0 ? 'Completed' : 'Error', startedAt: t, finishedAt: t };
  await kube.request('PUT', `${PODS}/${pod.metadata.name}/status`, {
    ...live,
    status: {
      phase: code === 0 ? 'Running' : 'Pending',
      initContainerStatuses: [
        {
          name: 'installer',
          image: KONTAIN.artifacts.image,
          imageID: '',
          ready: code === 0,
          restartCount: 0,
          state: { terminated },
        },
      ],
    },
  });
  return pod.metadata.name;
}

describe('krun runtime install --daemonset', () => {
  test('one DaemonSet per install profile: init container + pause, no token, node affinity; uninstall removes it', async () => {
    // Given two containerd 1.7 nodes (one decision), a CRI-O node and a docker node
    const nodes = await createNodes(kube, [
      { name: 'ctrda', runtime: 'containerd://1.7.27' },
      { name: 'ctrdb', runtime: 'containerd://1.7.20' },
      { name: 'crio', runtime: 'cri-o://1.30.4' },
      { name: 'docker', runtime: 'docker://24.0.7' },
    ]);
    const [ctrda, ctrdb, crio, docker] = nodes.names as [string, string, string, string];
    const profile = (name: string, runtime: string) =>
      profileOf(KONTAIN, planNode(nodeObject({ name, runtime }), KONTAIN));
    const ctrdProfile = profile(ctrda, 'containerd://1.7.27');
    const crioProfile = profile(crio, 'cri-o://1.30.4');
    const ctrdSet = `krun-kontain-${ctrdProfile}`;
    const crioSet = `krun-kontain-${crioProfile}`;
    const install = () =>
      krun(['runtime', 'install', 'kontain', '--daemonset', '-l', nodes.selector], { cleanEnv: env });
    const pods: string[] = [];
    try {
      // When
      const r = await install();
      // Then one DaemonSet per profile; each supported node gets its profile label; no Jobs
      assert.equal(r.status, 0, r.stderr);
      assert.match(ctrdProfile, /^containerd-config-[0-9a-f]{6}$/);
      assert.equal(profile(ctrdb, 'containerd://1.7.20'), ctrdProfile);
      assert.match(crioProfile, /^crio-dropin-[0-9a-f]{6}$/);
      assert.deepEqual(r.stdout.split('\n').slice(2), [
        `daemonset.apps/${crioSet} created`,
        `daemonset.apps/${ctrdSet} created`,
        `node/${crio} labelled krun.dev/kontain-profile=${crioProfile}`,
        `node/${crio} waiting for the pod of daemonset/${crioSet}`,
        `node/${ctrda} labelled krun.dev/kontain-profile=${ctrdProfile}`,
        `node/${ctrda} waiting for the pod of daemonset/${ctrdSet}`,
        `node/${ctrdb} labelled krun.dev/kontain-profile=${ctrdProfile}`,
        `node/${ctrdb} waiting for the pod of daemonset/${ctrdSet}`,
        `node/${docker} skipped (${DOCKER_REASON})`,
        '',
      ]);
      assert.equal((await labelsOf(ctrdb))['krun.dev/kontain-profile'], ctrdProfile);
      assert.equal(await statusOf(kube.get(`${JOBS}/${jobName(KONTAIN, 'install', ctrda)}`)), 404);
      // and the DaemonSet's pods hold no token, run the installer first and then pause, on nodes of its profile only
      const ds = await kube.get<DaemonSet>(`/apis/apps/v1/namespaces/kube-system/daemonsets/${ctrdSet}`);
      const pod = ds.spec.template.spec;
      assert.equal(pod.automountServiceAccountToken, false);
      assert.equal(pod.serviceAccountName, undefined);
      assert.deepEqual(pod.affinity, {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {
                matchExpressions: [
                  { key: 'krun.dev/kontain-profile', operator: 'In', values: [ctrdProfile] },
                  { key: 'kubernetes.io/os', operator: 'In', values: ['linux'] },
                  { key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] },
                ],
              },
            ],
          },
        },
      });
      assert.deepEqual(
        pod.initContainers.map((c) => [c.name, c.command]),
        [['installer', ['sh', '/krun/runtime-installer.sh', 'install', '/host']]],
      );
      assert.deepEqual(
        Object.fromEntries(pod.initContainers[0]?.env.map((e) => [e.name, e.value]) ?? []),
        installerEnv(KONTAIN, planNode(nodeObject({ name: ctrda, runtime: 'containerd://1.7.27' }), KONTAIN)),
      );
      assert.deepEqual(
        pod.containers.map((c) => [c.name, c.image]),
        [['pause', 'registry.k8s.io/pause:3.10']],
      );
      assert.deepEqual(ds.spec.selector.matchLabels, {
        'krun.dev/runtime': 'kontain',
        'krun.dev/profile': ctrdProfile,
      });

      // When the DaemonSet's pod on one containerd node finished its installer, and on the CRI-O node failed
      pods.push(await simulateDaemonPod(ds, ctrda, 0));
      const crioDs = await kube.get<DaemonSet>(`/apis/apps/v1/namespaces/kube-system/daemonsets/${crioSet}`);
      pods.push(await simulateDaemonPod(crioDs, crio, 1));
      const again = await install();
      // Then that node is labelled, the failure is named, and nothing else changes
      assert.equal(again.status, 1);
      assert.deepEqual(again.stdout.split('\n').slice(2), [
        `daemonset.apps/${crioSet} unchanged`,
        `daemonset.apps/${ctrdSet} unchanged`,
        `node/${crio} failed: pod/${pods[1]} the installer exited with 1; retrying`,
        `node/${ctrda} labelled`,
        `node/${ctrdb} waiting for the pod of daemonset/${ctrdSet}`,
        `node/${docker} skipped (${DOCKER_REASON})`,
        '',
      ]);
      assert.ok(again.stderr.includes(`kubectl -n kube-system logs pod/${pods[1]} -c installer`), again.stderr);
      const status = await krun(['runtime', 'status', 'kontain', '-l', nodes.selector], { cleanEnv: env });
      assert.equal(status.status, 0, status.stderr);
      const lines = rows(status.stdout);
      assert.deepEqual(lines.slice(1, 3), [
        [`daemonset.apps/${ctrdSet}: 0 of 0 ready (nodes labelled krun.dev/kontain-profile=${ctrdProfile})`],
        [`daemonset.apps/${crioSet}: 0 of 0 ready (nodes labelled krun.dev/kontain-profile=${crioProfile})`],
      ]);
      assert.deepEqual(lines[5], [
        ctrda,
        'containerd://1.7.27',
        'containerd-config',
        'yes',
        'install succeeded',
        'installed',
      ]);

      // When it is uninstalled
      const removed = await krun(['runtime', 'uninstall', 'kontain', '-l', nodes.selector], { cleanEnv: env });
      // Then the nodes leave the DaemonSets' reach, get revert Jobs, and the DaemonSets no node uses are deleted
      assert.equal(removed.status, 0, removed.stderr);
      assert.deepEqual(removed.stdout.split('\n'), [
        'configmap/krun-runtime-installer unchanged',
        `node/${crio} unlabelled krun.dev/kontain-profile`,
        `job.batch/${jobName(KONTAIN, 'revert', crio)} created`,
        `node/${crio} waiting for job/${jobName(KONTAIN, 'revert', crio)}`,
        `node/${ctrda} unlabelled krun.dev/kontain-profile`,
        `job.batch/${jobName(KONTAIN, 'revert', ctrda)} created`,
        `node/${ctrda} waiting for job/${jobName(KONTAIN, 'revert', ctrda)}`,
        `node/${ctrdb} unlabelled krun.dev/kontain-profile`,
        `job.batch/${jobName(KONTAIN, 'revert', ctrdb)} created`,
        `node/${ctrdb} waiting for job/${jobName(KONTAIN, 'revert', ctrdb)}`,
        `node/${docker} skipped (${DOCKER_REASON})`,
        `daemonset.apps/${ctrdSet} deleted`,
        `daemonset.apps/${crioSet} deleted`,
        'runtimeclass.node.k8s.io/kontain kept (1 node still labelled)',
        '',
      ]);
      assert.equal((await labelsOf(ctrda))['krun.dev/kontain-profile'], undefined);
      assert.equal(await statusOf(kube.get(`/apis/apps/v1/namespaces/kube-system/daemonsets/${ctrdSet}`)), 404);
    } finally {
      for (const pod of pods) await statusOf(kube.request('DELETE', `${PODS}/${pod}?gracePeriodSeconds=0`));
      for (const set of [ctrdSet, crioSet]) {
        await statusOf(kube.request('DELETE', `/apis/apps/v1/namespaces/kube-system/daemonsets/${set}`));
      }
      await removeJobs(nodes.names);
      await nodes.remove();
    }
  });
});

describe('krun runtime install --wait', () => {
  test('times out with an error naming the Job; labels the node when its Job succeeds while waiting; Ctrl-C stops it', async () => {
    // Given a containerd node
    const nodes = await createNodes(kube, [{ name: 'wait', runtime: 'containerd://1.7.27' }]);
    const [node] = nodes.names as [string];
    const job = jobName(KONTAIN, 'install', node);
    const args = ['runtime', 'install', 'kontain', '-l', nodes.selector, '--wait'];
    try {
      // When its Job doesn't finish within the timeout
      const r = await krun([...args, '--timeout', '1s'], { cleanEnv: env });
      // Then krun fails saying what it waited for, after printing what it applied
      assert.equal(r.status, 1);
      assert.match(r.stdout, new RegExp(`^job\\.batch/${job} created$`, 'm'));
      assert.ok(r.stderr.includes(`timed out after 1s waiting for job/${job} on node ${node}`), r.stderr);
      assert.ok(r.stderr.includes(`kubectl -n kube-system describe job/${job}`), r.stderr);

      // When Ctrl-C interrupts the wait
      const interrupted = spawnKrun(args, { cleanEnv: { ...env, KRUN_TIMEOUT: '10m' } });
      await interrupted.waitForLog(`Waiting for the installer on node ${node}`);
      interrupted.child.kill('SIGINT');
      // Then krun stops with 130
      const stopped = await interrupted.exited;
      assert.equal(stopped.status, 130, stopped.stderr);

      // When the Job succeeds while krun waits
      const waiting = spawnKrun(args, { cleanEnv: { ...env, KRUN_TIMEOUT: '10m' } });
      await waiting.waitForLog(`Waiting for the installer on node ${node}`);
      await simulateSuccess(kube, job);
      const done = await waiting.exited;
      // Then the node is labelled and krun succeeds
      assert.equal(done.status, 0, done.stderr);
      assert.match(done.stdout, new RegExp(`^node/${node} labelled$`, 'm'));
      assert.equal((await labelsOf(node))['kontain.app/kontain-runtime'], 'true');
    } finally {
      await removeJobs(nodes.names);
      await nodes.remove();
    }
  });
});
