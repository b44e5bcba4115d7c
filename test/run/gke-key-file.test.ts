// krun run on a developer machine (off Google Cloud: no metadata server, no Cloud Run variables) with a service
// account key file in GOOGLE_APPLICATION_CREDENTIALS: google-auth-library exchanges the key for the account's access
// token at the emulator's token endpoint, krun finds the GKE cluster in the key's project, and connects to the real
// kube-apiserver as the account's email (which the apiserver maps to the Google identity, as GKE does). An external
// account file (workload identity federation) works the same way: a Kubernetes token file exchanged at STS.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { krun } from '../support/cli.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { launcherCase } from '../support/launcher-case.ts';

/** The key's project, with the cluster; the emulator's default project is another. */
const PROJECT = 'dev-keys-proj';
const { plane, kube, gcp, work } = await gcpTestbed('gke-key', {
  projectId: 'unrelated-proj',
  projectNumber: '999988887777',
});

before(async () => {
  gcp.state.addProject({ projectId: PROJECT, projectNumber: '444455556666' });
  gcp.state.addCluster({ projectId: PROJECT, name: 'dev-mesh', location: 'europe-west1', kube: plane.access });
});

describe('krun run off Google Cloud with GOOGLE_APPLICATION_CREDENTIALS', () => {
  test("finds the cluster in the key's project, connects as the key's service account, writes the Pod files", async () => {
    // Given a service account of the project, its key file, and its rights: list clusters, create the KSA's tokens
    const ns = await kube.createNamespace('key');
    await kube.createServiceAccount(ns, 'default');
    const { email } = gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'dev-laptop' });
    gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', email);
    await kube.grant(
      ns,
      'krun',
      [
        { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['default'], verbs: ['create'] },
        { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get'] },
      ],
      [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: email }],
    );
    const keyFile = join(work, 'dev-laptop.json');
    await writeFile(keyFile, await gcp.state.createKeyFile(email), { mode: 0o600 });
    // And a developer machine: the emulator's environment without the metadata server, and nothing may probe it
    const offGoogleCloud: Record<string, string> = gcp.env();
    delete offGoogleCloud.GCE_METADATA_HOST;
    await mkdir(join(work, 'home'));
    const env = {
      PATH: process.env.PATH,
      HOME: join(work, 'home'),
      MESH_BASE_DIR: work,
      PORT_http: '-',
      KRUN_HBONE_PORT: '-',
      ...offGoogleCloud,
      GOOGLE_APPLICATION_CREDENTIALS: keyFile,
      METADATA_SERVER_DETECTION: 'none',
      WORKLOAD_NAMESPACE: ns,
    };

    // When krun prints its configuration
    const printed = await krun(['run', '--print-config', '-o', 'json'], { cleanEnv: env });
    // Then the project is the key file's and the cluster the one in it
    assert.equal(printed.status, 0, printed.stderr);
    const config = JSON.parse(printed.stdout);
    assert.deepEqual(config.namespace, { value: ns, source: 'env WORKLOAD_NAMESPACE' });
    assert.deepEqual(config.projectId, { value: PROJECT, source: 'Google Cloud discovery' });
    assert.deepEqual(config.clusterName, { value: 'dev-mesh', source: 'GKE discovery' });

    // When it runs an app
    const script = `cat "$KRUN_SERVICE_ACCOUNT_DIR/token" > ${work}/token; echo "$POD_NAMESPACE \${GCE_METADATA_HOST-unset}"`;
    const r = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    // Then it selected the cluster, reached the apiserver as the key's account (only it holds the RBAC grant), and
    // wrote the KSA token the app read; the app saw no metadata server
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${ns} unset\n`);
    assert.match(
      r.stderr,
      /"message":"selected GKE cluster","cluster":"europe-west1\/dev-mesh","reason":"another region"/,
    );
    const token = await readFile(join(work, 'token'), 'utf8');
    assert.equal((await kube.reviewToken(token, [])).user?.username, `system:serviceaccount:${ns}:default`);
    assert.doesNotMatch(r.stderr, /ya29\.|eyJ|PRIVATE KEY/, 'no token or key in the logs');
  });

  test('an external account: a Kubernetes token file → STS → an impersonated service account', async () => {
    // Given a KSA elsewhere whose token (audience: the identity namespace) sits in a file, and a Google service
    // account it may impersonate, with the rights krun needs
    const ns = await kube.createNamespace('ext');
    await kube.createServiceAccount(ns, 'default');
    await kube.createServiceAccount(ns, 'runner');
    const pool = `${PROJECT}.svc.id.goog`;
    const { token: subject } = await kube.requestToken(ns, 'runner', [pool], 3600);
    const tokenFile = join(work, 'runner-token');
    await writeFile(tokenFile, subject, { mode: 0o600 });
    const { email } = gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'federated-runner' });
    gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', email);
    gcp.state.grant(`projects/${PROJECT}`, 'roles/browser', email);
    gcp.state.grant(
      `projects/${PROJECT}/serviceAccounts/${email}`,
      'roles/iam.workloadIdentityUser',
      `serviceAccount:${pool}[${ns}/runner]`,
    );
    await kube.grant(
      ns,
      'krun',
      [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['default'], verbs: ['create'] }],
      [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: email }],
    );
    // And the external account configuration gcloud iam workload-identity-pools create-cred-config would write
    const credentials = join(work, 'external-account.json');
    const clusterUrl = `https://container.googleapis.com/v1/projects/${PROJECT}/locations/europe-west1/clusters/dev-mesh`;
    await writeFile(
      credentials,
      JSON.stringify({
        type: 'external_account',
        audience: `identitynamespace:${pool}:${clusterUrl}`,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${gcp.endpoints.sts}/v1/token`,
        credential_source: { file: tokenFile },
        service_account_impersonation_url: `${gcp.endpoints.iamcredentials}/v1/projects/-/serviceAccounts/${email}:generateAccessToken`,
        // google-auth-library looks the project up here (the audience names it); no gcloud override reaches it
        cloud_resource_manager_url: `${gcp.endpoints.cloudresourcemanager}/v1/projects/`,
      }),
    );
    const offGoogleCloud: Record<string, string> = gcp.env();
    delete offGoogleCloud.GCE_METADATA_HOST;
    const { dir, env } = await launcherCase(work, {
      ...offGoogleCloud,
      GOOGLE_APPLICATION_CREDENTIALS: credentials,
      METADATA_SERVER_DETECTION: 'none',
      PROJECT_ID: PROJECT,
      WORKLOAD_NAMESPACE: ns,
    });
    // When krun runs an app
    const r = await krun(['run', '--', 'sh', '-c', `cat "$KRUN_SERVICE_ACCOUNT_DIR/token" > ${dir}/token`], {
      cleanEnv: env,
    });
    // Then it reached the apiserver as the impersonated account (only it holds the RBAC grant)
    assert.equal(r.status, 0, r.stderr);
    const token = await readFile(join(dir, 'token'), 'utf8');
    assert.equal((await kube.reviewToken(token, [])).user?.username, `system:serviceaccount:${ns}:default`);
    assert.doesNotMatch(r.stderr, /ya29\.|eyJ/, 'no token in the logs');
  });
});
