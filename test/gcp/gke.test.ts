// GKE, Fleet and STS against the real control plane: "GCP credentials → GKE API → kubeconfig → real apiserver" as
// one chain (the apiserver's token webhook accepts the emulator's access tokens, as GKE accepts Google's), fleet
// memberships with the Connect Gateway URL, and the workload identity token exchange of a real K8s token.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClusterManagerClient } from '@google-cloud/container';
import { IAMCredentialsClient } from '@google-cloud/iam-credentials';
import { sts } from '@googleapis/sts';
import { GoogleAuth, OAuth2Client } from 'google-auth-library';
import { controlPlane } from '../support/control-plane/shared.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { clusterUrl, connectGatewayUrl } from '../support/gcp/gke.ts';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { mintAccessToken, newAccessTokenKey } from '../support/gcp/tokens.ts';
import { statusOf, TestKube } from '../support/kube.ts';
import { failure } from './errors.ts';

const PROJECT = 'gke-project';
const NUMBER = '577215664901';
const RUNNER = `k8s-fortio@${PROJECT}.iam.gserviceaccount.com`;

const plane = await controlPlane();
const admin = new TestKube(plane.access);
let gcp: GcpEmulator;

before(async () => {
  gcp = await startGcpEmulator({
    projectId: PROJECT,
    projectNumber: NUMBER,
    serviceAccount: RUNNER,
    accessTokenKey: plane.gcpAccessTokenKey,
  });
  gcp.useInThisProcess();
  gcp.state.addCluster({
    name: 'asm-cluster',
    location: 'us-central1',
    kube: plane.access,
    resourceLabels: { mesh_id: 'proj-577215664901' },
  });
  gcp.state.addCluster({ name: 'other', location: 'europe-west1-b', endpoint: '34.1.2.3', caCertificatePem: 'x' });
  gcp.state.grant(`projects/${PROJECT}`, 'roles/container.clusterViewer', RUNNER);
});
after(() => gcp.stop());

function authAs(principal: string): GoogleAuth {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: gcp.state.accessToken(principal).token });
  return new GoogleAuth({ authClient });
}

describe('GKE (@google-cloud/container, REST transport)', () => {
  test('GCP credentials → GKE API → kubeconfig → the real apiserver, authenticated as the Google account', async () => {
    // Given the workload's ADC (metadata server) and the container API
    const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
    const gke = new ClusterManagerClient({ ...gcp.clientOptions('container'), auth });
    // When krun lists the clusters in every location and picks the mesh one
    const [list] = await gke.listClusters({ parent: `projects/${PROJECT}/locations/-` });
    const names = list.clusters?.map((c) => [c.name, c.location]);
    assert.deepEqual(names, [
      ['asm-cluster', 'us-central1'],
      ['other', 'europe-west1-b'],
    ]);
    const [cluster] = await gke.getCluster({ name: `projects/${PROJECT}/locations/us-central1/clusters/asm-cluster` });
    assert.deepEqual(cluster.resourceLabels, { mesh_id: 'proj-577215664901' });
    // And builds its kubeconfig from endpoint and CA, authenticating with the same Google token
    const server = `https://${cluster.endpoint}`;
    const ca = Buffer.from(cluster.masterAuth?.clusterCaCertificate ?? '', 'base64').toString('utf8');
    const token = (await auth.getAccessToken()) ?? '';
    const kube = new TestKube({ server, ca, token });
    // Then the real apiserver knows it as the Google account's email ...
    const review = await kube.post<{ status: { userInfo: { username: string; groups: string[] } } }>(
      '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    );
    assert.equal(review.status.userInfo.username, RUNNER);
    assert.ok(review.status.userInfo.groups.includes('system:authenticated'));
    // ... which RBAC then governs: forbidden until bound, allowed after
    const ns = await admin.createNamespace('gke-chain');
    assert.equal(await statusOf(kube.get(`/api/v1/namespaces/${ns}/configmaps`)), 403);
    // (a Role with explicit rules: without kube-controller-manager, aggregated ClusterRoles like `view` stay empty)
    await admin.grant(
      ns,
      'configmap-reader',
      [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: RUNNER }],
    );
    await waitFor('RoleBinding to take effect', async () =>
      (await statusOf(kube.get(`/api/v1/namespaces/${ns}/configmaps`))) === 200 ? true : undefined,
    );
    // And a forged token (wrong key) is not accepted
    const forged = mintAccessToken(newAccessTokenKey(), {
      member: `serviceAccount:${RUNNER}`,
      email: RUNNER,
      exp: 2e9,
    });
    const stranger = new TestKube({ server, ca, token: forged });
    assert.equal(await statusOf(stranger.get(`/api/v1/namespaces/${ns}/configmaps`)), 401);
    await gke.close();
  });

  test('a missing cluster is NOT_FOUND; a caller without container.clusters.get is PERMISSION_DENIED', async () => {
    const viewer = new ClusterManagerClient({ ...gcp.clientOptions('container'), auth: authAs(RUNNER) });
    const [, status, message] = await failure(
      viewer.getCluster({ name: `projects/${PROJECT}/locations/us-central1/clusters/ghost` }),
    );
    assert.equal(status, 'NOT_FOUND');
    assert.equal(message, `Not found: projects/${PROJECT}/locations/us-central1/clusters/ghost.`);
    const nobody = new ClusterManagerClient({ ...gcp.clientOptions('container'), auth: authAs('nobody@example.com') });
    const [, denied] = await failure(nobody.listClusters({ parent: `projects/${PROJECT}/locations/-` }));
    assert.equal(denied, 'PERMISSION_DENIED');
    await viewer.close();
    await nobody.close();
  });
});

describe('GKE Hub memberships (REST through google-auth-library)', () => {
  test('lists and gets memberships, whose resource link leads to the GKE cluster and the Connect Gateway', async () => {
    // Given a fleet membership for the mesh cluster, and a reader
    const membership = gcp.state.addMembership({
      name: 'asm-cluster',
      cluster: `projects/${PROJECT}/locations/us-central1/clusters/asm-cluster`,
    });
    gcp.state.grant(`projects/${PROJECT}`, 'roles/gkehub.viewer', RUNNER);
    const client = await authAs(RUNNER).getClient();
    // When the memberships in every location are listed, and one is read
    const list = await client.request<{
      resources: { name: string; endpoint: { gkeCluster: { resourceLink: string } } }[];
    }>({
      url: `${gcp.endpoints.gkehub}/v1/projects/${PROJECT}/locations/-/memberships`,
    });
    const one = await client.request<{ name: string; authority: { workloadIdentityPool: string } }>({
      url: `${gcp.endpoints.gkehub}/v1/projects/${PROJECT}/locations/global/memberships/asm-cluster`,
    });
    // Then the membership points at the cluster, and names the workload identity pool
    assert.deepEqual(
      list.data.resources.map((m) => [m.name, m.endpoint.gkeCluster.resourceLink]),
      [
        [
          `projects/${PROJECT}/locations/global/memberships/asm-cluster`,
          `//container.googleapis.com/projects/${PROJECT}/locations/us-central1/clusters/asm-cluster`,
        ],
      ],
    );
    assert.equal(one.data.authority.workloadIdentityPool, `${PROJECT}.svc.id.goog`);
    // And its Connect Gateway URL has the project number form
    assert.equal(
      connectGatewayUrl(gcp.state, membership),
      `https://connectgateway.googleapis.com/v1/projects/${NUMBER}/locations/global/gkeMemberships/asm-cluster`,
    );
  });

  test('a missing membership is 404 NOT_FOUND', async () => {
    const client = await authAs(RUNNER).getClient();
    const [status, googleStatus] = await failure(
      client.request({ url: `${gcp.endpoints.gkehub}/v1/projects/${PROJECT}/locations/global/memberships/ghost` }),
    );
    assert.deepEqual([status, googleStatus], [404, 'NOT_FOUND']);
  });
});

describe('STS token exchange (@googleapis/sts)', () => {
  test('a K8s ServiceAccount token becomes a federated token that can impersonate a bound GSA', async () => {
    // Given a KSA token for the trust domain, as krun requests it
    const ns = await admin.createNamespace('sts');
    await admin.createServiceAccount(ns, 'default');
    const pool = `${PROJECT}.svc.id.goog`;
    const { token: subjectToken } = await admin.requestToken(ns, 'default', [pool], 600);
    const cluster = gcp.state.clusters.get(`projects/${PROJECT}/locations/us-central1/clusters/asm-cluster`);
    assert.ok(cluster);
    // When it is exchanged at STS for the cluster's identity namespace
    const client = sts({ version: 'v1', rootUrl: gcp.rootUrl('sts') });
    const { data } = await client.v1.token({
      requestBody: {
        grantType: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subjectTokenType: 'urn:ietf:params:oauth:token-type:jwt',
        requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
        audience: `identitynamespace:${pool}:${clusterUrl(cluster)}`,
        subjectToken,
        scope: 'https://www.googleapis.com/auth/cloud-platform',
      },
    });
    // Then a federated access token comes back in the OAuth shape
    assert.equal(data.token_type, 'Bearer');
    assert.equal(data.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    assert.equal(data.expires_in, 3600);
    // And with roles/iam.workloadIdentityUser for the KSA on a GSA, it mints that GSA's tokens
    const gsa = `mesh-p4sa@${PROJECT}.iam.gserviceaccount.com`;
    gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'mesh-p4sa' });
    gcp.state.grant(
      `projects/${PROJECT}/serviceAccounts/${gsa}`,
      'roles/iam.workloadIdentityUser',
      `serviceAccount:${pool}[${ns}/default]`,
    );
    const federated = new OAuth2Client();
    federated.setCredentials({ access_token: data.access_token ?? '' });
    const credentials = new IAMCredentialsClient({
      ...gcp.clientOptions('iamcredentials'),
      authClient: federated as never,
    });
    const [id] = await credentials.generateIdToken({
      name: `projects/-/serviceAccounts/${gsa}`,
      audience: 'https://x.a.run.app',
      includeEmail: true,
    });
    assert.equal(gcp.issuer.tokens.verify(id.token ?? '', ['https://x.a.run.app']).email, gsa);
    await credentials.close();
  });

  test('a token for another audience is invalid_grant; an unknown cluster is invalid_target', async () => {
    const ns = await admin.createNamespace('sts-bad');
    await admin.createServiceAccount(ns, 'default');
    const { token: wrongAudience } = await admin.requestToken(ns, 'default', ['istio-ca'], 600);
    const client = sts({ version: 'v1', rootUrl: gcp.rootUrl('sts') });
    const exchange = (audience: string) =>
      client.v1.token({
        requestBody: {
          grantType: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subjectTokenType: 'urn:ietf:params:oauth:token-type:jwt',
          audience,
          subjectToken: wrongAudience,
        },
      });
    const pool = `${PROJECT}.svc.id.goog`;
    const error = async (audience: string) => {
      try {
        await exchange(audience);
      } catch (err) {
        const e = err as { status?: number; response?: { data?: { error?: string } } };
        return [e.status, e.response?.data?.error];
      }
      assert.fail('exchange should fail');
    };
    const base = `https://container.googleapis.com/v1/projects/${PROJECT}/locations/us-central1/clusters`;
    assert.deepEqual(await error(`identitynamespace:${pool}:${base}/asm-cluster`), [400, 'invalid_grant']);
    assert.deepEqual(await error(`identitynamespace:${pool}:${base}/ghost`), [400, 'invalid_target']);
  });
});
