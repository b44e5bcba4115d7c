// A rotated istiod root reaches a long-running workload: the refresh loop `krun run` runs (keepFresh with
// istiodRootRefresh) re-reads ConfigMap istio-ca-root-cert from the real apiserver and rewrites the root file
// atomically when it changed. istiod publishes that ConfigMap into every namespace and puts its own root back when
// it is edited, except in the system namespaces: the rotation is made there (kube-public), where the test owns it.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KubeClient } from '../../src/lib/kube/client.ts';
import { loadKubeconfig } from '../../src/lib/kube/kubeconfig.ts';
import { MESH_PATHS } from '../../src/lib/mesh/injector.ts';
import { istiodRootRefresh, readIstiodRoot, writeIstiodRoot } from '../../src/lib/mesh/root-cert.ts';
import { keepFresh } from '../../src/lib/run/refresh.ts';
import { testContext } from '../support/context.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { TestKube } from '../support/kube.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { createCertificateAuthority } from '../support/pki.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const NAMESPACE = 'kube-public';
const CM = `/api/v1/namespaces/${NAMESPACE}/configmaps/istio-ca-root-cert`;
const INTERVAL_MS = 60_000;
const work = await mkdtemp(join(tmpdir(), 'krun-root-'));
after(async () => {
  await kube.request('DELETE', CM).catch(() => {});
  await rm(work, { recursive: true, force: true });
});

describe('istiod root rotation while running', () => {
  test('a changed istio-ca-root-cert is written to the root file at the next re-read, atomically', async () => {
    const [oldRoot, newRoot] = await Promise.all([
      createCertificateAuthority('old istiod root'),
      createCertificateAuthority('new istiod root'),
    ]);
    await kube.request('DELETE', CM).catch(() => {});
    await kube.post(`/api/v1/namespaces/${NAMESPACE}/configmaps`, {
      metadata: { name: 'istio-ca-root-cert' },
      data: { 'root-cert.pem': oldRoot.certPem },
    });
    const connection = await loadKubeconfig([plane.kubeconfig]);
    assert.ok(connection);
    const client = new KubeClient(connection);
    const clock = new ManualClock();
    const ctx = testContext({ clock });
    const source = {
      client,
      namespace: NAMESPACE,
      setting: { value: undefined, source: 'unset' },
      log: ctx.log,
    };
    const path = join(work, MESH_PATHS.rootCert);
    // Given the root krun wrote at start
    const first = await readIstiodRoot(source, false);
    assert.ok(first);
    assert.equal(await writeIstiodRoot(work, first), true);
    assert.equal(await readFile(path, 'utf8'), oldRoot.certPem);
    // And the refresh loop running on the injected clock
    const stop = new AbortController();
    const loop = keepFresh(
      istiodRootRefresh(source, work, INTERVAL_MS, clock, stop.signal),
      clock.now().getTime() + INTERVAL_MS,
      { what: 'istiod root re-read', clock, log: ctx.log, signal: stop.signal },
    );
    try {
      // When istiod's root is rotated in the ConfigMap
      await kube.request('PUT', CM, {
        metadata: { name: 'istio-ca-root-cert' },
        data: { 'root-cert.pem': newRoot.certPem },
      });
      // Then nothing changes before the interval has passed
      await waitFor('the loop to sleep', async () => (clock.pending > 0 ? true : undefined));
      clock.advance(INTERVAL_MS - 1);
      assert.equal(clock.pending, 1, 'the loop still sleeps: no re-read yet');
      assert.equal(await readFile(path, 'utf8'), oldRoot.certPem);
      // And at the interval the file holds the new root, with its mode, and no temporary file is left beside it
      clock.advance(1);
      await waitFor('the new root in the file', async () =>
        (await readFile(path, 'utf8')) === newRoot.certPem ? true : undefined,
      );
      assert.equal((await stat(path)).mode & 0o777, 0o644);
      assert.deepEqual(await readdir(join(work, 'var/run/secrets/istio')), ['root-cert.pem']);
      assert.ok(
        ctx.logs().some((l) => l.message === 'the istiod root certificate changed; rewrote it'),
        ctx.stderr(),
      );
      // And an unchanged root is not rewritten at the next re-read
      const before = (await stat(path)).mtimeMs;
      await waitFor('the loop to sleep again', async () => (clock.pending > 0 ? true : undefined));
      clock.advance(INTERVAL_MS);
      await waitFor('the next sleep', async () => (clock.requested.length >= 3 ? true : undefined));
      assert.equal((await stat(path)).mtimeMs, before);
      assert.equal(ctx.logs().filter((l) => l.message.includes('changed; rewrote it')).length, 1);
    } finally {
      stop.abort();
      await loop;
      client.close();
    }
  });
});

describe('the istiod root from CAROOT_ISTIOD', () => {
  test('one from mesh-env is fetched from mesh-env again at each re-read; one from the environment is kept', async () => {
    const [oldRoot, newRoot] = await Promise.all([
      createCertificateAuthority('old mesh-env root'),
      createCertificateAuthority('new mesh-env root'),
    ]);
    let published = oldRoot.certPem;
    // A namespace without istio-ca-root-cert, and mesh-env as the gate keeps it (a stand-in: the real one is shared)
    const client = {
      get: async (path: string) => {
        if (path.endsWith('/configmaps/istio-ca-root-cert'))
          throw Object.assign(new Error('not found'), { status: 404 });
        assert.equal(path, '/api/v1/namespaces/istio-system/configmaps/mesh-env');
        return { data: { CAROOT_ISTIOD: published } };
      },
    } as unknown as KubeClient;
    const log = testContext().log;
    const fromMeshEnv = {
      client,
      namespace: 'apps',
      setting: { value: oldRoot.certPem, source: 'mesh-env CAROOT_ISTIOD' },
      log,
    };
    published = newRoot.certPem;
    assert.equal((await readIstiodRoot(fromMeshEnv, false))?.pem, oldRoot.certPem, 'at start: the resolved setting');
    assert.deepEqual(await readIstiodRoot(fromMeshEnv, true), {
      pem: newRoot.certPem,
      source: 'mesh-env CAROOT_ISTIOD',
    });
    const fromEnv = { ...fromMeshEnv, setting: { value: oldRoot.certPem, source: 'env CAROOT_ISTIOD' } };
    assert.deepEqual(await readIstiodRoot(fromEnv, true), { pem: oldRoot.certPem, source: 'env CAROOT_ISTIOD' });
  });
});
