// Cloud Run Admin API v2 through @google-cloud/run (REST transport): services get/list/create/delete with their URLs,
// ingress and ports, long-running operations, and the invoker IAM policy.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ServicesClient } from '@google-cloud/run';
import { GoogleAuth, OAuth2Client } from 'google-auth-library';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { failure } from './errors.ts';

const PROJECT = 'run-project';
const NUMBER = '141421356237';
const DEPLOYER = 'deployer@example.com';
const VIEWER = 'viewer@example.com';

let gcp: GcpEmulator;

before(async () => {
  gcp = await startGcpEmulator({ projectId: PROJECT, projectNumber: NUMBER, region: 'us-central1' });
  gcp.useInThisProcess();
  gcp.state.grant(`projects/${PROJECT}`, 'roles/run.admin', DEPLOYER);
  gcp.state.addRunService({ name: 'fortio', http2: true, labels: { mesh: 'asm' } });
  gcp.state.addRunService({ name: 'hgate', region: 'europe-west1', ingress: 'INGRESS_TRAFFIC_INTERNAL_ONLY' });
});
after(() => gcp.stop());

function clientAs(principal: string): ServicesClient {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: gcp.state.accessToken(principal).token });
  return new ServicesClient({ ...gcp.clientOptions('run'), auth: new GoogleAuth({ authClient }) });
}

describe('Cloud Run Admin API v2', () => {
  test('getService returns the URLs, ingress and h2c port of a seeded service', async () => {
    // Given a deployer's client
    const run = clientAs(DEPLOYER);
    // When the service is read
    const [service] = await run.getService({ name: `projects/${PROJECT}/locations/us-central1/services/fortio` });
    // Then its URLs have both Cloud Run forms, the hashed one first as `uri`
    const [hashed, deterministic] = service.urls ?? [];
    assert.match(hashed ?? '', /^https:\/\/fortio-[0-9a-z]{10}-uc\.a\.run\.app$/);
    assert.equal(deterministic, `https://fortio-${NUMBER}.us-central1.run.app`);
    assert.equal(service.uri, hashed);
    // And the rest of what krun reads
    assert.equal(service.name, `projects/${PROJECT}/locations/us-central1/services/fortio`);
    assert.equal(service.ingress, 'INGRESS_TRAFFIC_ALL');
    assert.deepEqual(service.labels, { mesh: 'asm' });
    assert.equal(service.template?.containers?.[0]?.ports?.[0]?.name, 'h2c');
    assert.equal(service.template?.serviceAccount, `${NUMBER}-compute@developer.gserviceaccount.com`);
    assert.equal(service.terminalCondition?.state, 'CONDITION_SUCCEEDED');
    await run.close();
  });

  test('listServices in every region (`-`) returns both services', async () => {
    const run = clientAs(DEPLOYER);
    const [services] = await run.listServices({ parent: `projects/${PROJECT}/locations/-` });
    assert.deepEqual(
      services.map((s) => [s.name, s.ingress]),
      [
        [`projects/${PROJECT}/locations/us-central1/services/fortio`, 'INGRESS_TRAFFIC_ALL'],
        [`projects/${PROJECT}/locations/europe-west1/services/hgate`, 'INGRESS_TRAFFIC_INTERNAL_ONLY'],
      ],
    );
    await run.close();
  });

  test('a missing service is NOT_FOUND, and a caller without a role is PERMISSION_DENIED', async () => {
    const [, status, message] = await failure(
      clientAs(DEPLOYER).getService({ name: `projects/${PROJECT}/locations/us-central1/services/nope` }),
    );
    assert.equal(status, 'NOT_FOUND');
    assert.equal(
      message,
      `Resource 'nope' of kind 'SERVICE' in region 'us-central1' in project '${PROJECT}' does not exist.`,
    );
    const [, denied] = await failure(
      clientAs(VIEWER).getService({ name: `projects/${PROJECT}/locations/us-central1/services/fortio` }),
    );
    assert.equal(denied, 'PERMISSION_DENIED');
  });

  test('createService is a long-running operation; creating the same service again is ALREADY_EXISTS', async () => {
    // Given a deployer
    const run = clientAs(DEPLOYER);
    const parent = `projects/${PROJECT}/locations/us-central1`;
    // When a service is created and the operation awaited
    const [operation] = await run.createService({
      parent,
      serviceId: 'echo',
      service: {
        ingress: 'INGRESS_TRAFFIC_ALL',
        template: { containers: [{ image: 'gcr.io/krun/echo:1', ports: [{ name: 'http1', containerPort: 9090 }] }] },
      },
    });
    const [created] = await operation.promise();
    // (and the operation can be read back by name, as a poller does)
    const polled = await run.checkCreateServiceProgress(operation.name ?? '');
    assert.equal(polled.done, true);
    assert.equal((polled.result as { name?: string } | undefined)?.name, `${parent}/services/echo`);
    // Then the operation completed with the new service
    assert.equal(operation.done, true);
    assert.equal(created.name, `${parent}/services/echo`);
    assert.equal(created.creator, DEPLOYER);
    assert.equal(created.template?.containers?.[0]?.ports?.[0]?.containerPort, 9090);
    assert.equal(gcp.state.runServices.get(`${parent}/services/echo`)?.image, 'gcr.io/krun/echo:1');
    // And a second create is refused
    const [, status] = await failure(
      run.createService({
        parent,
        serviceId: 'echo',
        service: { template: { containers: [{ image: 'gcr.io/krun/echo:2' }] } },
      }),
    );
    assert.equal(status, 'ALREADY_EXISTS');
    // When it is deleted
    const [deletion] = await run.deleteService({ name: `${parent}/services/echo` });
    await deletion.promise();
    // Then it is gone
    assert.equal(gcp.state.runServices.has(`${parent}/services/echo`), false);
    await run.close();
  });

  test('the invoker policy: allUsers can be granted, and a stale etag is ABORTED', async () => {
    // Given the service's policy, empty with Google's empty etag
    const run = clientAs(DEPLOYER);
    const resource = `projects/${PROJECT}/locations/us-central1/services/fortio`;
    const [empty] = await run.getIamPolicy({ resource });
    assert.deepEqual(empty.bindings, []);
    assert.equal(Buffer.from(empty.etag ?? '').toString('base64'), 'ACAB');
    // When allUsers is made an invoker with that etag
    const [written] = await run.setIamPolicy({
      resource,
      policy: { bindings: [{ role: 'roles/run.invoker', members: ['allUsers'] }], etag: empty.etag },
    });
    // Then the policy holds it, and anonymous callers may invoke
    assert.deepEqual(
      written.bindings?.map((b) => [b.role, b.members]),
      [['roles/run.invoker', ['allUsers']]],
    );
    assert.equal(gcp.state.allows(undefined, 'run.routes.invoke', [resource]), true);
    // And writing again with the old etag is refused, leaving the policy as it was
    const [, status] = await failure(run.setIamPolicy({ resource, policy: { bindings: [], etag: empty.etag } }));
    assert.equal(status, 'ABORTED');
    assert.equal(gcp.state.allows(undefined, 'run.routes.invoke', [resource]), true);
    await run.close();
  });

  test('testIamPermissions returns the permissions the caller holds; a missing operation is NOT_FOUND', async () => {
    // Given an invoker that is not a deployer
    const resource = `projects/${PROJECT}/locations/us-central1/services/fortio`;
    gcp.state.grant(resource, 'roles/run.invoker', VIEWER);
    // When it asks which of three permissions it has
    const [held] = await clientAs(VIEWER).testIamPermissions({
      resource,
      permissions: ['run.routes.invoke', 'run.services.get', 'run.services.delete'],
    });
    // Then only the invoker's is returned
    assert.deepEqual(held.permissions, ['run.routes.invoke']);
    // And an operation that never existed is NOT_FOUND
    const [, status] = await failure(
      clientAs(DEPLOYER).checkCreateServiceProgress(`projects/${PROJECT}/locations/us-central1/operations/nope`),
    );
    assert.equal(status, 'NOT_FOUND');
  });
});
