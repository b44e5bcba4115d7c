// krun run on Google Cloud with nothing configured but its identity: the emulated metadata server and GKE API lead
// it to the right cluster among several, it connects to the real kube-apiserver with the emulator's access token
// (which the apiserver maps to the Google service account, as GKE does), and writes the Pod files.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { krun } from '../support/cli.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { launcherCase } from '../support/launcher-case.ts';

const PROJECT = 'mesh-proj';
const { plane, kube, gcp, work } = await gcpTestbed('gke', {
  projectId: PROJECT,
  projectNumber: '111122223333',
  region: 'us-central1',
});

before(async () => {
  // The preferred cluster (mesh label, own region) is down; the labelled one in another region is the real apiserver;
  // an `istio` cluster in the own region must not win over a labelled one.
  gcp.state.addCluster({
    name: 'config-central',
    location: 'us-central1-b',
    endpoint: '127.0.0.1:1',
    caCertificatePem: plane.access.ca,
    resourceLabels: { 'krun-mesh': 'true' },
  });
  gcp.state.addCluster({
    name: 'config-east',
    location: 'us-east1',
    kube: plane.access,
    resourceLabels: { mesh_id: 'proj-111122223333' },
  });
  gcp.state.addCluster({ name: 'istio-central', location: 'us-central1', kube: plane.access });
});

/** A workload namespace whose Google service account (k8s-<ns>@…) may create its tokens, and krun's environment. */
async function workload(extra: Record<string, string> = {}) {
  const ns = await kube.createNamespace('gke');
  await kube.createServiceAccount(ns, 'default');
  const email = `k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`;
  gcp.state.addServiceAccount({ accountId: `k8s-${ns}` });
  gcp.metadata.serviceAccount = email;
  await kube.grant(
    ns,
    'krun',
    [
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['default'], verbs: ['create'] },
      { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get'] },
    ],
    [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: email }],
  );
  const { dir, env } = await launcherCase(work, {
    ...gcp.env(),
    K_SERVICE: 'fortio',
    K_REVISION: 'fortio-00001-abc',
    ...extra,
  });
  return { ns, email, dir, env };
}

describe('krun run on Cloud Run, discovering its GKE cluster', () => {
  test('selects the reachable mesh cluster, connects as the Google service account, writes the Pod files', async () => {
    const { ns, email, dir, env } = await workload();
    gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', email);
    const script = `cat "$KRUN_SERVICE_ACCOUNT_DIR/token" > ${dir}/token; echo "$POD_NAME $POD_NAMESPACE"`;
    const r = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    // The namespace came from the service account's name; the pod name from the revision and the instance id
    assert.equal(r.stdout, `fortio-00001-abc-${gcp.metadata.instanceId.slice(0, 8)} ${ns}\n`);
    const token = await readFile(join(dir, 'token'), 'utf8');
    assert.equal((await kube.reviewToken(token, [])).user?.username, `system:serviceaccount:${ns}:default`);
    // The choice and the fallback are logged with their reasons
    const logs = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      logs.filter((l) => /GKE cluster/.test(l.message)).map((l) => [l.severity, l.message, l.cluster, l.reason]),
      [
        [
          'WARNING',
          'GKE cluster API unreachable; trying the next candidate',
          'us-central1-b/config-central',
          undefined,
        ],
        ['INFO', 'selected GKE cluster', 'us-east1/config-east', 'labelled krun-mesh/mesh_id, another region'],
      ],
    );
    assert.doesNotMatch(r.stderr, /ya29\.|eyJ/, 'no token in the logs');
  });

  test('--print-config shows what discovery decided, and why', async () => {
    const { ns, email, env } = await workload();
    gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', email);
    const r = await krun(['run', '--print-config', '-o', 'json'], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    const config = JSON.parse(r.stdout);
    assert.deepEqual(config.namespace, { value: ns, source: 'derived from the Google service account' });
    assert.deepEqual(config.projectId, { value: PROJECT, source: 'Google Cloud discovery' });
    assert.deepEqual(config.projectNumber, { value: '111122223333', source: 'metadata server' });
    assert.deepEqual(config.clusterName, { value: 'config-east', source: 'GKE discovery' });
    assert.deepEqual(config.trustDomain, { value: `${PROJECT}.svc.id.goog`, source: 'derived from PROJECT_ID' });
  });

  test('CLUSTER_NAME and CLUSTER_LOCATION name the cluster directly', async () => {
    const { email, env } = await workload({ CLUSTER_NAME: 'istio-central', CLUSTER_LOCATION: 'us-central1' });
    gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', email);
    const r = await krun(['run', '--', 'true'], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /"message":"selected GKE cluster","cluster":"us-central1\/istio-central","reason":"named by CLUSTER_NAME and CLUSTER_LOCATION"/,
    );
  });

  test('a Fleet membership leads to its GKE cluster when the project has none', async () => {
    const fleetProject = 'fleet-proj';
    gcp.state.addProject({ projectId: fleetProject });
    gcp.state.addMembership({
      projectId: fleetProject,
      name: 'east',
      cluster: `projects/${PROJECT}/locations/us-east1/clusters/config-east`,
    });
    const { email, env } = await workload({ PROJECT_ID: fleetProject });
    gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', email);
    gcp.state.grant(`projects/${fleetProject}`, 'roles/container.clusterViewer', email);
    gcp.state.grant(`projects/${fleetProject}`, 'roles/gkehub.viewer', email);
    const r = await krun(['run', '--', 'true'], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /"message":"selected GKE cluster","cluster":"us-east1\/config-east","reason":"Fleet membership east"/,
    );
  });

  test('failures name the missing permission, setting or endpoint', async () => {
    // No permission to list clusters
    const denied = await workload();
    const forbidden = await krun(['run', '--', 'true'], { cleanEnv: denied.env });
    assert.equal(forbidden.status, 1);
    assert.match(
      forbidden.stderr,
      new RegExp(`error: forbidden: ${denied.email} may not list GKE clusters in project ${PROJECT}`),
    );
    assert.match(
      forbidden.stderr,
      new RegExp(
        `Try:\\n  gcloud projects add-iam-policy-binding ${PROJECT} --member serviceAccount:${denied.email} --role roles/container.clusterViewer`,
      ),
    );
    // An empty project
    gcp.state.addProject({ projectId: 'empty-proj' });
    const empty = await workload({ PROJECT_ID: 'empty-proj' });
    gcp.state.grant('projects/empty-proj', 'roles/container.clusterViewer', empty.email);
    gcp.state.grant('projects/empty-proj', 'roles/gkehub.viewer', empty.email);
    const none = await krun(['run', '--', 'true'], { cleanEnv: empty.env });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /error: no GKE cluster or Fleet membership in project empty-proj/);
    // The GKE API down
    const down = await workload({ CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER: 'http://127.0.0.1:1/' });
    const unreachable = await krun(['run', '--', 'true'], { cleanEnv: down.env });
    assert.equal(unreachable.status, 1);
    assert.match(
      unreachable.stderr,
      new RegExp(`error: can't list GKE clusters in project ${PROJECT}: .*ECONNREFUSED`),
    );
  });
});

describe('krun kubeconfig', () => {
  test('prints a kubeconfig that kubectl accepts, authenticating as the Google identity', async () => {
    const { email, dir, env } = await workload();
    gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', email);
    // A PATH without the auth plugin (this machine may have one installed)
    const r = await krun(['kubeconfig', '--project', PROJECT, '--cluster', 'config-east', '--location', 'us-east1'], {
      cleanEnv: { ...env, PATH: join(dir, 'no-plugin') },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /gke-gcloud-auth-plugin is not on PATH: the kubeconfig holds a static access token/);
    const file = join(dir, 'kubeconfig.yaml');
    await writeFile(file, r.stdout, { mode: 0o600 });
    assert.match(r.stdout, /^current-context: gke_mesh-proj_us-east1_config-east$/m);
    const whoami = await kubectl([
      '--kubeconfig',
      file,
      'auth',
      'whoami',
      '-o',
      'jsonpath={.status.userInfo.username}',
    ]);
    assert.equal(whoami, email);
  });

  test('uses the gke-gcloud-auth-plugin exec credential when it is installed, and --merge keeps other contexts', async () => {
    const { email, dir, env } = await workload();
    gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', email);
    // A stand-in plugin: prints an ExecCredential with a token the emulator minted for this identity
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const credential = JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      kind: 'ExecCredential',
      status: { token: gcp.state.accessToken(email).token },
    });
    await writeFile(join(bin, 'gke-gcloud-auth-plugin'), `#!/bin/sh\ncat <<'EOF'\n${credential}\nEOF\n`, {
      mode: 0o755,
    });
    const kubeconfig = join(dir, 'config');
    await writeFile(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: other, cluster: {server: "https://other:443"}}]\ncontexts: [{name: other, context: {cluster: other}}]\ncurrent-context: other\n',
    );
    const pathWithPlugin = `${bin}:${env.PATH}`;
    const r = await krun(['kubeconfig', '--project', PROJECT, '--merge'], {
      cleanEnv: { ...env, PATH: pathWithPlugin, KUBECONFIG: kubeconfig },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `context gke_mesh-proj_us-east1_config-east written to ${kubeconfig}\n`);
    assert.equal((await stat(kubeconfig)).mode & 0o777, 0o600);
    const contexts = await kubectl(
      ['--kubeconfig', kubeconfig, 'config', 'get-contexts', '-o', 'name'],
      pathWithPlugin,
    );
    assert.deepEqual(contexts.trim().split('\n').sort(), ['gke_mesh-proj_us-east1_config-east', 'other']);
    const whoami = await kubectl(
      ['--kubeconfig', kubeconfig, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
      pathWithPlugin,
    );
    assert.equal(whoami, email);
  });
});

function kubectl(args: string[], path = process.env.PATH): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('kubectl', args, { env: { PATH: path, HOME: work } }, (err, stdout, stderr) =>
      err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    );
  });
}
