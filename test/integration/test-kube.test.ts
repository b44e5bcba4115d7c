// Deleting through the test helper and the product client. TestKube: a DELETE with DeleteOptions in its body
// must reach the apiserver whole, and leave the keep-alive connection usable for the requests after it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controlPlane } from '../support/control-plane/shared.ts';
import { statusOf, TestKube } from '../support/kube.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);

test('a DELETE body is read by the apiserver and the reused connection keeps working', async () => {
  const ns = await kube.createNamespace('delete-body');
  const path = `/api/v1/namespaces/${ns}/configmaps`;
  const made = await Promise.all(
    ['a', 'b'].map((name) => kube.post<{ metadata: { uid: string } }>(path, { metadata: { name }, data: { k: 'v' } })),
  );
  // A precondition that does not hold: only a body the apiserver read in full makes it refuse (409)
  const stale = { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: 'not-the-uid' } };
  assert.equal(await statusOf(kube.request('DELETE', `${path}/a`, stale)), 409);
  // The same connection serves the next requests: the body did not spill into them
  assert.equal(await statusOf(kube.get(`${path}/a`)), 200);
  const options = { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: '' } };
  for (const [i, name] of ['a', 'b'].entries()) {
    const uid = made[i]?.metadata.uid ?? '';
    assert.equal(
      await statusOf(kube.request('DELETE', `${path}/${name}`, { ...options, preconditions: { uid } })),
      200,
    );
    assert.equal(await statusOf(kube.get(`${path}/${name}`)), 404);
  }
});

test("KubeClient.delete with dryRun adds it to a path's own query: the object stays", async () => {
  const { KubeClient } = await import('../../src/lib/kube/client.ts');
  const { loadKubeconfig } = await import('../../src/lib/kube/kubeconfig.ts');
  const connection = await loadKubeconfig([plane.kubeconfig]);
  assert.ok(connection);
  const client = new KubeClient(connection);
  try {
    const ns = await kube.createNamespace('dry-delete');
    const path = `/api/v1/namespaces/${ns}/configmaps/kept`;
    await kube.post(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'kept' } });
    // As `krun runtime uninstall --dry-run=server` deletes: with propagationPolicy in the path
    assert.equal(await client.delete(`${path}?propagationPolicy=Background`, { dryRun: true }), true);
    assert.equal(await statusOf(kube.get(path)), 200);
    assert.equal(await client.delete(`${path}?propagationPolicy=Background`), true);
    assert.equal(await statusOf(kube.get(path)), 404);
  } finally {
    client.close();
  }
});
