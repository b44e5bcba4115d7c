// `krun setup-cluster` against the real kube-apiserver (istiod running, so istio-system and its root certificate
// exist) and the Google Cloud emulator, then `krun register` finding the gate it installed. Everything here is
// cluster-wide state other test files may read (mesh-env): it lives only as long as the test, and the test waits
// for another file's mesh-env to be gone before making its own.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { krun } from '../support/cli.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { statusOf } from '../support/kube.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';

const PROJECT = 'cluster-proj';
const OPERATOR = '555566667777-compute@developer.gserviceaccount.com';
const { plane, kube, gcp, work } = await gcpTestbed('setup-cluster', {
  projectId: PROJECT,
  projectNumber: '555566667777',
  serviceAccount: OPERATOR,
});

const CORE = '/api/v1/namespaces/istio-system';
const RBAC = '/apis/rbac.authorization.k8s.io/v1';
const GATE_PATHS = [
  `${CORE}/serviceaccounts/krun-gate`,
  `${RBAC}/namespaces/istio-system/roles/krun-gate`,
  `${RBAC}/namespaces/istio-system/rolebindings/krun-gate`,
  `${RBAC}/clusterroles/krun-gate`,
  `${RBAC}/clusterrolebindings/krun-gate`,
  '/apis/apps/v1/namespaces/istio-system/deployments/krun-gate',
  `${CORE}/services/krun-gate`,
  `${CORE}/services/krun-gate-internal`,
  `${RBAC}/namespaces/istio-system/rolebindings/krun-mesh-env-reader-all`,
  `${CORE}/configmaps/mesh-env`,
];
const READER_ROLE = `${RBAC}/namespaces/istio-system/roles/krun-mesh-env-reader`;

async function operatorEnv(namespace?: string) {
  const dir = await mkdtemp(join(work, 'case-'));
  return {
    PATH: process.env.PATH,
    HOME: dir,
    KUBECONFIG: writeKubeconfig(join(dir, 'admin.kubeconfig'), plane.access, namespace),
    ...gcp.env(),
  };
}

function lines(verbs: (name: string) => string, suffix = ''): string {
  return [
    'serviceaccount/krun-gate',
    'role.rbac.authorization.k8s.io/krun-gate',
    'rolebinding.rbac.authorization.k8s.io/krun-gate',
    'clusterrole.rbac.authorization.k8s.io/krun-gate',
    'clusterrolebinding.rbac.authorization.k8s.io/krun-gate',
    'deployment.apps/krun-gate',
    'service/krun-gate',
    'service/krun-gate-internal',
    'role.rbac.authorization.k8s.io/krun-mesh-env-reader',
    'rolebinding.rbac.authorization.k8s.io/krun-mesh-env-reader-all',
    'configmap/mesh-env',
  ]
    .map((name) => `${name} ${verbs(name)}${suffix}\n`)
    .join('');
}

async function exists(path: string): Promise<boolean> {
  return (await statusOf(kube.get(path))) === 200;
}

async function setLoadBalancer(name: string, ip: string): Promise<void> {
  const service = await kube.get<Record<string, unknown>>(`${CORE}/services/${name}`);
  await kube.request('PUT', `${CORE}/services/${name}/status`, {
    ...service,
    status: { loadBalancer: { ingress: [{ ip }] } },
  });
}

describe('krun setup-cluster', () => {
  test('installs the gate and mesh-env; a second run changes nothing; register finds the gate', async (t) => {
    // Given no mesh-env (another file's is waited out) and an operator who may read the project
    await waitFor('no mesh-env from another test', async () => !(await exists(`${CORE}/configmaps/mesh-env`)), {
      timeoutMs: 60_000,
    });
    const readerExisted = await exists(READER_ROLE);
    t.after(async () => {
      for (const path of [...GATE_PATHS, ...(readerExisted ? [] : [READER_ROLE])]) {
        await kube.request('DELETE', path).catch(() => {});
      }
    });
    gcp.state.grant(`projects/${PROJECT}`, 'roles/browser', OPERATOR);
    const env = await operatorEnv();
    const args = ['setup-cluster', '--project', PROJECT, '--cluster-name', 'c1', '--cluster-location', 'us-central1'];

    // When a client dry run prints the objects
    const plan = await krun([...args, '--dry-run=client', '-o', 'name'], { cleanEnv: env });
    // Then it names them all and creates none
    assert.equal(plan.status, 0, plan.stderr);
    assert.equal(plan.stdout, lines(() => '').replaceAll(' \n', '\n'));
    assert.equal(await exists(`${CORE}/services/krun-gate`), false);

    // When it runs
    const r = await krun([...args, '--image', 'example.com/krun:test'], { cleanEnv: env });
    // Then every object is created (the shared reader Role may be there already)
    assert.equal(r.status, 0, r.stderr);
    const reader = readerExisted ? 'unchanged' : 'created';
    assert.equal(
      r.stdout,
      lines((name) => (name.endsWith('/krun-mesh-env-reader') ? reader : 'created')),
    );
    assert.match(r.stderr, /\[COMPLETED\] projects\/cluster-proj is number 555566667777\n/);
    assert.match(r.stderr, /\[COMPLETED\] gate addresses not known yet\n/);
    const roots = await kube.get<{ data: Record<string, string> }>(`${CORE}/configmaps/istio-ca-root-cert`);
    const meshEnv = await kube.get<{ data: Record<string, string> }>(`${CORE}/configmaps/mesh-env`);
    assert.deepEqual(meshEnv.data, {
      PROJECT_ID: PROJECT,
      PROJECT_NUMBER: '555566667777',
      CLUSTER_NAME: 'c1',
      CLUSTER_LOCATION: 'us-central1',
      CAROOT_ISTIOD: roots.data['root-cert.pem'],
    });
    const deployment = await kube.get<{
      spec: { template: { spec: { containers: { image: string; args: string[] }[] } } };
    }>('/apis/apps/v1/namespaces/istio-system/deployments/krun-gate');
    assert.deepEqual(
      deployment.spec.template.spec.containers.map((c) => [c.image, c.args]),
      [['example.com/krun:test', ['gate']]],
    );
    // and any authenticated identity may read mesh-env, but nothing else there
    const review = async (name: string) =>
      (
        await kube.post<{ status: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
          spec: {
            user: 'someone@example.com',
            groups: ['system:authenticated'],
            resourceAttributes: { namespace: 'istio-system', verb: 'get', resource: 'configmaps', name },
          },
        })
      ).status.allowed === true;
    assert.equal(await waitFor('RBAC for mesh-env', async () => (await review('mesh-env')) || undefined), true);
    assert.equal(await review('istio-ca-root-cert'), false);

    // When it runs again
    const again = await krun([...args, '--image', 'example.com/krun:test'], { cleanEnv: env });
    // Then nothing changes
    assert.equal(again.status, 0, again.stderr);
    assert.equal(
      again.stdout,
      lines(() => 'unchanged'),
    );

    // Given a namespace to register a Cloud Run service in, before the gate has an address
    gcp.state.grant(`projects/${PROJECT}`, 'roles/run.viewer', OPERATOR);
    const service = gcp.state.addRunService({ name: 'echo', http2: true });
    const ns = await kube.createNamespace('cl');
    const register = ['register', 'echo', '-n', ns, '--project', PROJECT, '--region', 'us-central1'];
    // When / Then register says what is missing
    const early = await krun(register, { cleanEnv: env });
    assert.equal(early.status, 1);
    assert.match(
      early.stderr,
      /error: no gate address in the cluster: service istio-system\/krun-gate-internal has no load-balancer address yet; service istio-system\/krun-gate has no load-balancer address yet; configmap istio-system\/mesh-env has no IMCON_ADDR or MCON_ADDR\n/,
    );
    assert.match(early.stderr, /--gate-address ADDRESS/);

    // When the load balancers get their addresses and setup-cluster runs again
    await setLoadBalancer('krun-gate-internal', '10.9.8.7');
    await setLoadBalancer('krun-gate', '34.9.8.7');
    const addressed = await krun([...args, '--image', 'example.com/krun:test'], { cleanEnv: env });
    // Then mesh-env gets them, and nothing else changes
    assert.equal(addressed.status, 0, addressed.stderr);
    assert.equal(
      addressed.stdout,
      lines((name) => (name === 'configmap/mesh-env' ? 'updated' : 'unchanged')),
    );
    const updated = await kube.get<{ data: Record<string, string> }>(`${CORE}/configmaps/mesh-env`);
    assert.equal(updated.data.IMCON_ADDR, '10.9.8.7');
    assert.equal(updated.data.MCON_ADDR, '34.9.8.7');
    // and register points the WorkloadEntry at the internal load balancer
    const registered = await krun(register, { cleanEnv: env });
    assert.equal(registered.status, 0, registered.stderr);
    assert.match(
      registered.stderr,
      /\[COMPLETED\] gate address 10\.9\.8\.7 \(from service istio-system\/krun-gate-internal\)\n/,
    );
    const entry = await kube.get<{ spec: { address: string } }>(
      `/apis/networking.istio.io/v1/namespaces/${ns}/workloadentries/echo-gate`,
    );
    assert.equal(entry.spec.address, '10.9.8.7');
    const svc = await kube.get<{ metadata: { annotations: Record<string, string> } }>(
      `/api/v1/namespaces/${ns}/services/echo`,
    );
    assert.equal(svc.metadata.annotations['krun.dev/cloud-run-url'], gcp.state.runServiceUrls(service)[0]);

    // When a server dry run asks the API server to validate everything
    const server = await krun([...args, '--image', 'example.com/krun:test', '--dry-run=server'], { cleanEnv: env });
    // Then
    assert.equal(server.status, 0, server.stderr);
    assert.equal(
      server.stdout,
      lines(() => 'unchanged', ' (server dry run)'),
    );
  });

  test('--uninstall deletes what setup-cluster created, keeps what others wrote, and is idempotent', async (t) => {
    // Given an installed cluster side (no mesh-env of another file), a key someone else added to mesh-env, and a
    // namespace's RoleBinding (as setup-namespace makes) granting the shared reader Role
    await waitFor('no mesh-env from another test', async () => !(await exists(`${CORE}/configmaps/mesh-env`)), {
      timeoutMs: 60_000,
    });
    const readerExisted = await exists(READER_ROLE);
    const nsBinding = `${RBAC}/namespaces/istio-system/rolebindings/krun-mesh-env-reader-un`;
    t.after(async () => {
      for (const path of [...GATE_PATHS, nsBinding, ...(readerExisted ? [] : [READER_ROLE])]) {
        await kube.request('DELETE', path).catch(() => {});
      }
    });
    gcp.state.grant(`projects/${PROJECT}`, 'roles/browser', OPERATOR);
    const env = await operatorEnv();
    const installed = await krun(['setup-cluster', '--project', PROJECT], { cleanEnv: env });
    assert.equal(installed.status, 0, installed.stderr);
    await kube.request(
      'PATCH',
      `${CORE}/configmaps/mesh-env`,
      { data: { XDS_ADDR: 'istiod.example:15012' } },
      {
        contentType: 'application/merge-patch+json',
      },
    );
    await kube.post(`${RBAC}/namespaces/istio-system/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'krun-mesh-env-reader-un', labels: { 'app.kubernetes.io/managed-by': 'krun' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'krun-mesh-env-reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'k8s-un@x.iam.gserviceaccount.com' }],
    });
    const uninstall = ['setup-cluster', '--uninstall'];
    const expected = (suffix: string) =>
      [
        "configmap/mesh-env updated (krun's keys removed; kept for the keys of others: XDS_ADDR)",
        'rolebinding.rbac.authorization.k8s.io/krun-mesh-env-reader-all deleted',
        "role.rbac.authorization.k8s.io/krun-mesh-env-reader kept (setup-namespace's RoleBindings use it: krun-mesh-env-reader-un)",
        'service/krun-gate-internal deleted',
        'service/krun-gate deleted',
        'deployment.apps/krun-gate deleted',
        'clusterrolebinding.rbac.authorization.k8s.io/krun-gate deleted',
        'clusterrole.rbac.authorization.k8s.io/krun-gate deleted',
        'rolebinding.rbac.authorization.k8s.io/krun-gate deleted',
        'role.rbac.authorization.k8s.io/krun-gate deleted',
        'serviceaccount/krun-gate deleted',
      ]
        .map((line) => `${line}${suffix}\n`)
        .join('');

    // When client and server dry runs ask what --uninstall would do
    for (const [mode, suffix] of [
      ['client', ' (dry run)'],
      ['server', ' (server dry run)'],
    ] as const) {
      const dry = await krun([...uninstall, `--dry-run=${mode}`], { cleanEnv: env });
      // Then they name every object, and nothing is deleted or changed
      assert.equal(dry.status, 0, dry.stderr);
      assert.equal(dry.stdout, expected(suffix));
      for (const path of GATE_PATHS) assert.equal(await exists(path), true, `${path} after --dry-run=${mode}`);
      const meshEnv = await kube.get<{ data: Record<string, string> }>(`${CORE}/configmaps/mesh-env`);
      assert.equal(meshEnv.data.PROJECT_ID, PROJECT);
    }

    // and -o name prints just the objects a run would delete
    const names = await krun([...uninstall, '--dry-run=client', '-o', 'name'], { cleanEnv: env });
    assert.equal(names.status, 0, names.stderr);
    assert.equal(
      names.stdout,
      expected('')
        .split('\n')
        .filter((line) => line.endsWith(' deleted'))
        .map((line) => `${line.replace(/ deleted$/, '')}\n`)
        .join(''),
    );

    // When it runs
    const r = await krun(uninstall, { cleanEnv: env });
    // Then setup-cluster's objects are gone; mesh-env keeps only the key krun did not write, and no longer krun's label
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expected(''));
    const meshEnvPath = `${CORE}/configmaps/mesh-env`;
    for (const path of GATE_PATHS.filter((p) => p !== meshEnvPath)) assert.equal(await exists(path), false, path);
    const kept = await kube.get<{ metadata: { labels?: Record<string, string> }; data: Record<string, string> }>(
      meshEnvPath,
    );
    assert.deepEqual(kept.data, { XDS_ADDR: 'istiod.example:15012' });
    assert.equal(kept.metadata.labels?.['app.kubernetes.io/managed-by'], undefined);
    assert.equal(await exists(READER_ROLE), true);

    // Given a Service of the gate's name that krun did not create
    await kube.post(`${CORE}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'krun-gate-internal' },
      spec: { ports: [{ port: 15442 }] },
    });
    // When --uninstall runs again
    const again = await krun(uninstall, { cleanEnv: env });
    // Then it deletes nothing, says so, and exits 0
    assert.equal(again.status, 0, again.stderr);
    assert.equal(
      again.stdout,
      [
        'configmap/mesh-env kept (not labelled app.kubernetes.io/managed-by=krun)',
        'rolebinding.rbac.authorization.k8s.io/krun-mesh-env-reader-all not found',
        "role.rbac.authorization.k8s.io/krun-mesh-env-reader kept (setup-namespace's RoleBindings use it: krun-mesh-env-reader-un)",
        'service/krun-gate-internal kept (not labelled app.kubernetes.io/managed-by=krun)',
        'service/krun-gate not found',
        'deployment.apps/krun-gate not found',
        'clusterrolebinding.rbac.authorization.k8s.io/krun-gate not found',
        'clusterrole.rbac.authorization.k8s.io/krun-gate not found',
        'rolebinding.rbac.authorization.k8s.io/krun-gate not found',
        'role.rbac.authorization.k8s.io/krun-gate not found',
        'serviceaccount/krun-gate not found',
        '',
      ].join('\n'),
    );
    assert.match(again.stderr, /nothing to delete/);
    assert.equal(await exists(`${CORE}/services/krun-gate-internal`), true);

    // When the namespace's RoleBinding is gone, and no other file's grants the reader Role
    await kube.request('DELETE', nsBinding);
    const role = await krun(uninstall, { cleanEnv: env });
    assert.equal(role.status, 0, role.stderr);
    const users = /krun-mesh-env-reader kept \(setup-namespace's RoleBindings use it: (.*)\)/.exec(role.stdout)?.[1];
    // Then the shared Role goes too (unless another test file's namespace still uses it, which it then names)
    if (users === undefined) {
      assert.match(role.stdout, /^role\.rbac\.authorization\.k8s\.io\/krun-mesh-env-reader deleted$/m);
      assert.equal(await exists(READER_ROLE), false);
    } else assert.doesNotMatch(users, /krun-mesh-env-reader-un/);
  });

  test('without a terminal a missing project names the flag', async () => {
    const env = await operatorEnv();
    const r = await krun(['setup-cluster'], { cleanEnv: env });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /error: google cloud project is required in a non-interactive run: pass --project/);
  });
});
