// IAM service accounts, project IAM policies (etag read-modify-write), Resource Manager projects and IAM Credentials
// impersonation, each through Google's own client for it against the emulator.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IAMCredentialsClient } from '@google-cloud/iam-credentials';
import { ProjectsClient } from '@google-cloud/resource-manager';
import { cloudresourcemanager } from '@googleapis/cloudresourcemanager';
import { iam } from '@googleapis/iam';
import { OAuth2Client } from 'google-auth-library';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { failure } from './errors.ts';

/** HTTP status (or gRPC code) and Google status of a failed call. */
const googleError = async (call: Promise<unknown>) => (await failure(call)).slice(0, 2);

const PROJECT = 'iam-project';
const ADMIN = 'admin@example.com';
const NOBODY = 'nobody@example.com';

let gcp: GcpEmulator;

before(async () => {
  gcp = await startGcpEmulator({ projectId: PROJECT, projectNumber: '314159265358' });
  gcp.useInThisProcess();
  gcp.state.grant(`projects/${PROJECT}`, 'roles/owner', ADMIN);
  const project = gcp.state.project(PROJECT);
  if (project) project.labels['mesh-namespace'] = 'fortio';
});
after(() => gcp.stop());

/**
 * An OAuth2 client holding an emulator access token for `principal`. Typed as `never` (assignable to each client's
 * auth option) because the google-gax 5 clients bundle their own google-auth-library major, with the same runtime
 * interface but separately declared types.
 */
function authAs(principal: string): never {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: gcp.state.accessToken(principal).token });
  return client as never;
}

describe('IAM service accounts (@googleapis/iam v1)', () => {
  test('creates a service account, then gets and lists it', async () => {
    // Given an admin
    const client = iam({ version: 'v1', auth: authAs(ADMIN), rootUrl: gcp.rootUrl('iam') });
    // When a service account is created
    const created = await client.projects.serviceAccounts.create({
      name: `projects/${PROJECT}`,
      requestBody: { accountId: 'k8s-fortio', serviceAccount: { displayName: 'fortio workloads' } },
    });
    // Then it has the email and name Google derives from the account id
    const email = `k8s-fortio@${PROJECT}.iam.gserviceaccount.com`;
    assert.equal(created.status, 200);
    assert.equal(created.data.email, email);
    assert.equal(created.data.name, `projects/${PROJECT}/serviceAccounts/${email}`);
    assert.equal(created.data.projectId, PROJECT);
    assert.equal(created.data.displayName, 'fortio workloads');
    assert.match(created.data.uniqueId ?? '', /^\d{21}$/);
    // And get (with the `-` project wildcard) and list return it
    const got = await client.projects.serviceAccounts.get({ name: `projects/-/serviceAccounts/${email}` });
    assert.deepEqual(got.data, created.data);
    const listed = await client.projects.serviceAccounts.list({ name: `projects/${PROJECT}` });
    assert.deepEqual(
      listed.data.accounts?.map((a) => a.email),
      [`314159265358-compute@developer.gserviceaccount.com`, email],
    );
  });

  test('creating an account id twice is 409 ALREADY_EXISTS', async () => {
    // Given an existing service account
    const client = iam({ version: 'v1', auth: authAs(ADMIN), rootUrl: gcp.rootUrl('iam') });
    gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'existing-sa' });
    // When it is created again
    // Then the conflict is reported
    assert.deepEqual(
      await googleError(
        client.projects.serviceAccounts.create({
          name: `projects/${PROJECT}`,
          requestBody: { accountId: 'existing-sa' },
        }),
      ),
      [409, 'ALREADY_EXISTS'],
    );
  });

  test('getting an unknown service account is 404 NOT_FOUND; a caller without permission gets 403', async () => {
    // When an admin asks for an account that does not exist
    const admin = iam({ version: 'v1', auth: authAs(ADMIN), rootUrl: gcp.rootUrl('iam') });
    assert.deepEqual(
      await googleError(
        admin.projects.serviceAccounts.get({
          name: `projects/${PROJECT}/serviceAccounts/ghost@${PROJECT}.iam.gserviceaccount.com`,
        }),
      ),
      [404, 'NOT_FOUND'],
    );
    // And a caller with no role tries to create one
    const nobody = iam({ version: 'v1', auth: authAs(NOBODY), rootUrl: gcp.rootUrl('iam') });
    assert.deepEqual(
      await googleError(
        nobody.projects.serviceAccounts.create({
          name: `projects/${PROJECT}`,
          requestBody: { accountId: 'sneaky-sa' },
        }),
      ),
      [403, 'PERMISSION_DENIED'],
    );
    // Then nothing was created
    assert.equal(gcp.state.serviceAccount(`sneaky-sa@${PROJECT}.iam.gserviceaccount.com`), undefined);
  });
});

describe('IAM service account policies (@googleapis/iam v1)', () => {
  test('setIamPolicy on a service account grants impersonation; a stale etag is 409 ABORTED', async () => {
    // Given a service account and its empty policy
    const client = iam({ version: 'v1', auth: authAs(ADMIN), rootUrl: gcp.rootUrl('iam') });
    const sa = gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'policy-target' });
    const resource = `projects/${PROJECT}/serviceAccounts/${sa.email}`;
    const { data: empty } = await client.projects.serviceAccounts.getIamPolicy({ resource });
    assert.deepEqual(empty, { version: 1, etag: 'ACAB' });
    // When a KSA's workload identity is bound with that etag
    const member = `serviceAccount:${PROJECT}.svc.id.goog[fortio/default]`;
    const { data: written } = await client.projects.serviceAccounts.setIamPolicy({
      resource,
      requestBody: {
        policy: { bindings: [{ role: 'roles/iam.workloadIdentityUser', members: [member] }], etag: 'ACAB' },
      },
    });
    // Then the binding is in force
    assert.deepEqual(written.bindings, [{ role: 'roles/iam.workloadIdentityUser', members: [member] }]);
    assert.equal(gcp.state.allows(member, 'iam.serviceAccounts.getAccessToken', [resource]), true);
    // And a second write with the old etag is refused
    assert.deepEqual(
      await googleError(
        client.projects.serviceAccounts.setIamPolicy({
          resource,
          requestBody: { policy: { bindings: [], etag: 'ACAB' } },
        }),
      ),
      [409, 'ABORTED'],
    );
  });
});

describe('Resource Manager v1 (@googleapis/cloudresourcemanager)', () => {
  test('projects.get returns the number and labels krun reads', async () => {
    // When the project is read
    const crm = cloudresourcemanager({
      version: 'v1',
      auth: authAs(ADMIN),
      rootUrl: gcp.rootUrl('cloudresourcemanager'),
    });
    const { data } = await crm.projects.get({ projectId: PROJECT });
    // Then it carries the number and the mesh-namespace label
    assert.equal(data.projectId, PROJECT);
    assert.equal(data.projectNumber, '314159265358');
    assert.equal(data.lifecycleState, 'ACTIVE');
    assert.deepEqual(data.labels, { 'mesh-namespace': 'fortio' });
  });

  test('a project that does not exist is 403, as Resource Manager hides existence', async () => {
    const crm = cloudresourcemanager({
      version: 'v1',
      auth: authAs(ADMIN),
      rootUrl: gcp.rootUrl('cloudresourcemanager'),
    });
    assert.deepEqual(await googleError(crm.projects.get({ projectId: 'no-such-project' })), [403, 'PERMISSION_DENIED']);
  });

  test('setIamPolicy is a read-modify-write: the current etag succeeds, a stale one is 409 ABORTED', async () => {
    // Given the project policy as read by two writers
    const crm = cloudresourcemanager({
      version: 'v1',
      auth: authAs(ADMIN),
      rootUrl: gcp.rootUrl('cloudresourcemanager'),
    });
    const { data: read } = await crm.projects.getIamPolicy({ resource: PROJECT, requestBody: {} });
    assert.deepEqual(read.bindings, [{ role: 'roles/owner', members: [`user:${ADMIN}`] }]);
    // When the first writes with the etag it read
    const bindings = [...(read.bindings ?? []), { role: 'roles/viewer', members: ['user:viewer@example.com'] }];
    const { data: written } = await crm.projects.setIamPolicy({
      resource: PROJECT,
      requestBody: { policy: { ...read, bindings } },
    });
    // Then the policy changes and gets a new etag
    assert.deepEqual(written.bindings, bindings);
    assert.notEqual(written.etag, read.etag);
    assert.equal(
      gcp.state.allows('user:viewer@example.com', 'resourcemanager.projects.get', [`projects/${PROJECT}`]),
      true,
    );
    // And the second writer, still holding the old etag, is refused
    assert.deepEqual(
      await googleError(
        crm.projects.setIamPolicy({ resource: PROJECT, requestBody: { policy: { ...read, bindings: [] } } }),
      ),
      [409, 'ABORTED'],
    );
    const { data: after } = await crm.projects.getIamPolicy({ resource: PROJECT, requestBody: {} });
    assert.deepEqual(after, written);
  });
});

describe('Resource Manager v3 (@google-cloud/resource-manager, REST transport)', () => {
  test('getProject by id returns the v3 shape', async () => {
    const projects = new ProjectsClient({ ...gcp.clientOptions('cloudresourcemanager'), authClient: authAs(ADMIN) });
    const [project] = await projects.getProject({ name: `projects/${PROJECT}` });
    assert.equal(project.name, 'projects/314159265358');
    assert.equal(project.projectId, PROJECT);
    assert.equal(project.state, 'ACTIVE');
    assert.deepEqual(project.labels, { 'mesh-namespace': 'fortio' });
    await projects.close();
  });

  test('getProject for a caller without permission is PERMISSION_DENIED', async () => {
    const projects = new ProjectsClient({ ...gcp.clientOptions('cloudresourcemanager'), authClient: authAs(NOBODY) });
    const [, status, message] = await failure(projects.getProject({ name: `projects/${PROJECT}` }));
    assert.equal(status, 'PERMISSION_DENIED');
    assert.equal(message, 'The caller does not have permission');
    await projects.close();
  });

  test('setIamPolicy with a stale etag is ABORTED', async () => {
    const projects = new ProjectsClient({ ...gcp.clientOptions('cloudresourcemanager'), authClient: authAs(ADMIN) });
    const [policy] = await projects.getIamPolicy({ resource: `projects/${PROJECT}` });
    gcp.state.grant(`projects/${PROJECT}`, 'roles/browser', 'user:someone@example.com');
    const [, status] = await failure(projects.setIamPolicy({ resource: `projects/${PROJECT}`, policy }));
    assert.equal(status, 'ABORTED');
    await projects.close();
  });
});

describe('IAM Credentials (@google-cloud/iam-credentials, REST transport)', () => {
  const TARGET = `mesh-robot@${PROJECT}.iam.gserviceaccount.com`;
  const CALLER = `k8s-caller@${PROJECT}.iam.gserviceaccount.com`;

  before(() => {
    gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'mesh-robot' });
    gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'k8s-caller' });
  });

  test('a token creator impersonates the target: its access token acts as the target, its ID token names it', async () => {
    // Given the caller may create tokens for the target, and the target may read the project
    gcp.state.grant(`projects/${PROJECT}/serviceAccounts/${TARGET}`, 'roles/iam.serviceAccountTokenCreator', CALLER);
    gcp.state.grant(`projects/${PROJECT}`, 'roles/browser', TARGET);
    const client = new IAMCredentialsClient({ ...gcp.clientOptions('iamcredentials'), authClient: authAs(CALLER) });
    // When it asks for an access token and an ID token as the target
    const [access] = await client.generateAccessToken({
      name: `projects/-/serviceAccounts/${TARGET}`,
      scope: ['https://www.googleapis.com/auth/cloud-platform'],
      lifetime: { seconds: 600 },
    });
    const [id] = await client.generateIdToken({
      name: `projects/-/serviceAccounts/${TARGET}`,
      audience: 'https://hgate.example',
      includeEmail: true,
    });
    // Then the access token expires when asked and works as the target
    const expires = Number(access.expireTime?.seconds ?? 0) * 1000;
    assert.ok(Math.abs(expires - (Date.now() + 600_000)) < 5000, `expires ${expires}`);
    const crm = cloudresourcemanager({ version: 'v1', rootUrl: gcp.rootUrl('cloudresourcemanager') });
    const res = await crm.projects.get({
      projectId: PROJECT,
      headers: { authorization: `Bearer ${access.accessToken}` },
    } as never);
    assert.equal(res.data.projectNumber, '314159265358');
    // And the ID token verifies, naming the target
    const claims = gcp.issuer.tokens.verify(id.token ?? '', ['https://hgate.example']);
    assert.equal(claims.email, TARGET);
    assert.equal(claims.sub, gcp.state.serviceAccount(TARGET)?.uniqueId);
    await client.close();
  });

  test('a caller without the token creator role is PERMISSION_DENIED', async () => {
    const client = new IAMCredentialsClient({ ...gcp.clientOptions('iamcredentials'), authClient: authAs(NOBODY) });
    const [, status, message] = await failure(
      client.generateAccessToken({
        name: `projects/-/serviceAccounts/${TARGET}`,
        scope: ['https://www.googleapis.com/auth/cloud-platform'],
      }),
    );
    assert.equal(status, 'PERMISSION_DENIED');
    assert.match(message, /^Permission 'iam.serviceAccounts.getAccessToken' denied on resource/);
    await client.close();
  });

  test('an unknown service account is NOT_FOUND for a caller allowed project-wide', async () => {
    const client = new IAMCredentialsClient({ ...gcp.clientOptions('iamcredentials'), authClient: authAs(ADMIN) });
    const [, status] = await failure(
      client.generateIdToken({
        name: `projects/-/serviceAccounts/ghost@${PROJECT}.iam.gserviceaccount.com`,
        audience: 'x',
      }),
    );
    assert.equal(status, 'NOT_FOUND');
    await client.close();
  });
});
