// `krun doctor` against the real kube-apiserver and the Google Cloud emulator: a namespace set up by
// setup-namespace passes every check; each deliberately broken piece then fails with the fix that repairs it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { krun } from '../support/cli.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';

const PROJECT = 'doctor-proj';
const OPERATOR = '333344445555-compute@developer.gserviceaccount.com';
const { plane, kube, gcp, work } = await gcpTestbed('doctor', {
  projectId: PROJECT,
  projectNumber: '333344445555',
  serviceAccount: OPERATOR,
});

before(async () => {
  gcp.state.grant(`projects/${PROJECT}`, 'roles/iam.serviceAccountAdmin', OPERATOR);
  gcp.state.grant(`projects/${PROJECT}`, 'roles/resourcemanager.projectIamAdmin', OPERATOR);
});

async function operatorEnv() {
  const dir = await mkdtemp(join(work, 'case-'));
  await mkdir(join(dir, 'home'));
  return {
    PATH: process.env.PATH,
    HOME: join(dir, 'home'),
    KUBECONFIG: writeKubeconfig(join(dir, 'admin.kubeconfig'), plane.access),
    ...gcp.env(),
  };
}

/** Each line's status and check name, without the details that vary (server address, versions). */
function summary(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => /^(PASS|FAIL) {2}/.test(l))
    .map((l) => l.replace(/ \(.*\)$/, '').replace(/: .*$/, ''));
}

const MESH_ENV = '/api/v1/namespaces/istio-system/configmaps';

describe('krun doctor', () => {
  test('passes a namespace setup-namespace prepared, and names the fix for each broken piece', async () => {
    // Given a namespace set up by krun, and mesh-env (cluster-wide state: it lives only as long as this test)
    const ns = `dr-${randomBytes(4).toString('hex')}`;
    const email = `k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`;
    const env = await operatorEnv();
    const setup = await krun(['setup-namespace', ns, '--project', PROJECT, '--yes'], { cleanEnv: env });
    assert.equal(setup.status, 0, setup.stderr);
    await kube.post(MESH_ENV, {
      metadata: { name: 'mesh-env' },
      data: {
        PROJECT_ID: PROJECT,
        PROJECT_NUMBER: '333344445555',
        CLUSTER_NAME: 'c1',
        CLUSTER_LOCATION: 'us-central1',
        IMCON_ADDR: '10.1.2.3',
      },
    });
    try {
      // When
      const healthy = await krun(['doctor', '-n', ns, '--project', PROJECT], { cleanEnv: env });
      // Then every check passes
      assert.equal(healthy.status, 0, healthy.stdout + healthy.stderr);
      const names = [
        'Google credentials',
        `Google service account ${email}`,
        `roles/container.clusterViewer for ${email} on project ${PROJECT}`,
        'Kubernetes API server reachable',
        `namespace ${ns}`,
        `serviceaccount ${ns}/default`,
        `${email} may create serviceaccounts/token default in ${ns}`,
        `${email} may get configmaps in ${ns}`,
        `${email} may get secrets in ${ns}`,
        `${email} may get configmaps mesh-env in istio-system`,
        'configmap istio-system/mesh-env',
        'gate address',
        'customresourcedefinition serviceentries.networking.istio.io',
        'customresourcedefinition workloadentries.networking.istio.io',
        'customresourcedefinition destinationrules.networking.istio.io',
      ];
      assert.deepEqual(
        summary(healthy.stdout),
        names.map((n) => `PASS  ${n}`),
      );
      assert.match(healthy.stdout, new RegExp(`^PASS {2}Google credentials \\(${OPERATOR}\\)$`, 'm'));
      assert.match(
        healthy.stdout,
        /^PASS {2}gate address \(10\.1\.2\.3 from configmap istio-system\/mesh-env IMCON_ADDR\)$/m,
      );

      // Given the project role, the namespace's RoleBinding and mesh-env's keys broken
      const policy = gcp.state.getPolicy(`projects/${PROJECT}`);
      gcp.state.setPolicy(`projects/${PROJECT}`, {
        bindings: policy.bindings.filter((b) => b.role !== 'roles/container.clusterViewer'),
      });
      await kube.request('DELETE', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/krun-launcher`);
      await kube.request('PUT', `${MESH_ENV}/mesh-env`, {
        metadata: { name: 'mesh-env' },
        data: { PROJECT_ID: PROJECT },
      });
      // When
      const broken = await krun(['doctor', '-n', ns, '--project', PROJECT], { cleanEnv: env });
      // Then each broken piece fails with its fix, and the command fails
      assert.equal(broken.status, 1);
      assert.equal(
        broken.stdout
          .split('\n')
          .filter((l) => !l.startsWith('PASS'))
          .join('\n'),
        [
          `FAIL  roles/container.clusterViewer for ${email} on project ${PROJECT}: not granted`,
          `      fix: gcloud projects add-iam-policy-binding ${PROJECT} --member serviceAccount:${email} --role roles/container.clusterViewer`,
          `FAIL  ${email} may create serviceaccounts/token default in ${ns}: denied by RBAC`,
          `      fix: krun setup-namespace ${ns} --project ${PROJECT}`,
          `FAIL  ${email} may get configmaps in ${ns}: denied by RBAC`,
          `      fix: krun setup-namespace ${ns} --project ${PROJECT}`,
          `FAIL  ${email} may get secrets in ${ns}: denied by RBAC`,
          `      fix: krun setup-namespace ${ns} --project ${PROJECT}`,
          'FAIL  configmap istio-system/mesh-env: missing PROJECT_NUMBER, CLUSTER_NAME, CLUSTER_LOCATION',
          '      fix: kubectl -n istio-system edit configmap mesh-env (or krun setup-cluster)',
          'FAIL  gate address: no gate address in the cluster: service istio-system/krun-gate-internal not found; service istio-system/krun-gate not found; configmap istio-system/mesh-env has no IMCON_ADDR or MCON_ADDR',
          "      fix: krun setup-cluster, then wait for the gate's load balancer (or set IMCON_ADDR in mesh-env)",
          '',
        ].join('\n'),
      );
      assert.match(broken.stderr, /error: 6 of 15 checks failed/);

      // When the fix is applied (setup-namespace again) and mesh-env is gone
      const fixed = await krun(['setup-namespace', ns, '--project', PROJECT, '--yes'], { cleanEnv: env });
      assert.equal(fixed.status, 0, fixed.stderr);
      await kube.request('DELETE', `${MESH_ENV}/mesh-env`);
      const again = await krun(['doctor', '-n', ns, '--project', PROJECT, '-o', 'json'], { cleanEnv: env });
      // Then only mesh-env fails, with its fix
      assert.equal(again.status, 1);
      const failed = (JSON.parse(again.stdout) as { ok: boolean }[]).filter((c) => !c.ok);
      assert.deepEqual(failed, [
        { name: 'configmap istio-system/mesh-env', ok: false, detail: 'not found', fix: 'krun setup-cluster' },
        {
          name: 'gate address',
          ok: false,
          detail:
            'no gate address in the cluster: service istio-system/krun-gate-internal not found; service istio-system/krun-gate not found; configmap istio-system/mesh-env not found',
          fix: "krun setup-cluster, then wait for the gate's load balancer (or set IMCON_ADDR in mesh-env)",
        },
      ]);
      // And -o yaml prints the same checks as -o json
      const yaml = await krun(['doctor', '-n', ns, '--project', PROJECT, '-o', 'yaml'], { cleanEnv: env });
      assert.equal(yaml.status, 1);
      assert.match(yaml.stdout, /^- name: /);
      assert.deepEqual(parseYaml(yaml.stdout), JSON.parse(again.stdout));
    } finally {
      await kube.request('DELETE', `${MESH_ENV}/mesh-env`).catch(() => {});
    }
  });

  test('a namespace limited to named ConfigMaps and Secrets passes when doctor is told the same names', async () => {
    // Given a namespace whose launcher may read only ConfigMap app and Secret key
    const ns = `dr-${randomBytes(4).toString('hex')}`;
    const email = `k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`;
    const env = await operatorEnv();
    const limits = ['--config-map', 'app', '--secret', 'key'];
    const setup = await krun(['setup-namespace', ns, '--project', PROJECT, '--yes', ...limits], { cleanEnv: env });
    assert.equal(setup.status, 0, setup.stderr);
    const rbac = (stdout: string) => stdout.split('\n').filter((l) => l.includes(` ${email} may get `));

    // When doctor checks the same names, then those reads pass
    const named = await krun(['doctor', '-n', ns, '--project', PROJECT, ...limits], { cleanEnv: env });
    assert.deepEqual(rbac(named.stdout), [
      `PASS  ${email} may get configmaps app in ${ns}`,
      `PASS  ${email} may get secrets key in ${ns}`,
      `PASS  ${email} may get configmaps mesh-env in istio-system`,
    ]);
    // and when a name the workload reads is not granted, the fix carries the names
    const more = await krun(['doctor', '-n', ns, '--project', PROJECT, '--config-map', 'app,other'], {
      cleanEnv: env,
    });
    assert.equal(more.status, 1);
    assert.match(
      more.stdout,
      new RegExp(
        `^FAIL {2}${email} may get configmaps other in ${ns}: denied by RBAC\n {6}fix: krun setup-namespace ${ns} --project ${PROJECT} --config-map app,other$`,
        'm',
      ),
    );
  });

  test('an unreachable cluster and a missing Google service account are reported, not thrown', async () => {
    // Given a namespace nobody set up, and a kubeconfig pointing nowhere
    const env = await operatorEnv();
    const dir = await mkdtemp(join(work, 'down-'));
    const down = writeKubeconfig(join(dir, 'down.kubeconfig'), { ...plane.access, server: 'https://127.0.0.1:1' });
    // When
    const r = await krun(['doctor', '-n', 'nobody', '--project', PROJECT, '--kubeconfig', down], { cleanEnv: env });
    // Then
    assert.equal(r.status, 1);
    assert.deepEqual(summary(r.stdout), [
      'PASS  Google credentials',
      `FAIL  Google service account k8s-nobody@${PROJECT}.iam.gserviceaccount.com`,
      `FAIL  roles/container.clusterViewer for k8s-nobody@${PROJECT}.iam.gserviceaccount.com on project ${PROJECT}`,
      'FAIL  Kubernetes API server reachable',
    ]);
    assert.match(r.stdout, /fix: krun setup-namespace nobody --project doctor-proj\n/);
    assert.match(r.stdout, /fix: check kubeconfig .*down\.kubeconfig/);
  });

  test('with SERVICE: the registration points at the current URL, and the service uses HTTP/2 on 15009', async () => {
    // Given a registered HTTP/2 service on port 15009, and an HTTP/1 one nobody registered
    gcp.state.grant(`projects/${PROJECT}`, 'roles/run.viewer', OPERATOR);
    const good = gcp.state.addRunService({ name: 'dr-h2', http2: true });
    good.containerPort = 15009;
    gcp.state.addRunService({ name: 'dr-h1' });
    const url = gcp.state.runServiceUrls(good)[0] ?? '';
    const ns = await kube.createNamespace('drs');
    const env = await operatorEnv();
    const where = ['-n', ns, '--project', PROJECT, '--region', 'us-central1'];
    const reg = await krun(['register', 'dr-h2', ...where, '--gate-address', '10.1.1.1'], { cleanEnv: env });
    assert.equal(reg.status, 0, reg.stderr);
    const serviceLines = (stdout: string) =>
      stdout
        .split('\n')
        .filter((l) => /^(PASS|FAIL) {2}(Cloud Run service|registration of)/.test(l))
        .join('\n');

    // When
    const ok = await krun(['doctor', 'dr-h2', ...where], { cleanEnv: env });
    // Then its three checks pass
    assert.equal(
      serviceLines(ok.stdout),
      [
        `PASS  Cloud Run service dr-h2 (${url})`,
        'PASS  Cloud Run service dr-h2 uses HTTP/2 end to end on port 15009',
        `PASS  registration of dr-h2 in namespace ${ns} (${url} via 10.1.1.1)`,
      ].join('\n'),
    );

    // Given the registration pointing at an old URL
    const path = `/api/v1/namespaces/${ns}/services/dr-h2`;
    const svc = await kube.get<{ metadata: { annotations: Record<string, string> } }>(path);
    svc.metadata.annotations['krun.dev/cloud-run-url'] = 'https://dr-h2-old-uc.a.run.app';
    await kube.request('PUT', path, svc);
    // When
    const stale = await krun(['doctor', 'dr-h2', ...where], { cleanEnv: env });
    // Then
    assert.equal(stale.status, 1);
    assert.match(
      stale.stdout,
      new RegExp(
        `FAIL {2}registration of dr-h2 in namespace ${ns}: points at https://dr-h2-old-uc\\.a\\.run\\.app, but the service's URL is ${url.replaceAll('.', '\\.')}\n {6}fix: krun register dr-h2 -n ${ns} --project ${PROJECT} --region us-central1\n`,
      ),
    );

    // When the HTTP/1 service is checked
    const h1 = await krun(['doctor', 'dr-h1', ...where], { cleanEnv: env });
    // Then both its HTTP/2 setting and its missing registration fail, with their fixes
    assert.equal(h1.status, 1);
    assert.match(
      h1.stdout,
      /FAIL {2}Cloud Run service dr-h1 uses HTTP\/2 end to end on port 15009: ports: http1 8080\n {6}fix: gcloud run services update dr-h1 --region us-central1 --use-http2 --port 15009\n/,
    );
    assert.match(
      h1.stdout,
      new RegExp(`FAIL {2}registration of dr-h1 in namespace ${ns}: not found\\n {6}fix: krun register dr-h1 -n ${ns}`),
    );
  });
});
