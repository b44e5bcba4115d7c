// krun run's Pod files against the real kube-apiserver: tokens where a Pod has them (accepted by TokenReview for the
// right audience), Secret/ConfigMap mounts in kubelet's layout and their updates, refresh and recovery.
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KubeClient } from '../../src/lib/kube/client.ts';
import { inClusterConnection, loadKubeconfig } from '../../src/lib/kube/kubeconfig.ts';
import { syncMount } from '../../src/lib/run/mounts.ts';
import { keepFresh } from '../../src/lib/run/refresh.ts';
import { ISTIO_TOKEN_DIR, SERVICE_ACCOUNT_DIR, writeTokenFiles } from '../../src/lib/run/tokens.ts';
import { testContext } from '../support/context.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { TestKube } from '../support/kube.ts';
import { ManualClock } from '../support/manual-clock.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);

async function workload(t: { after: (fn: () => Promise<void>) => void }) {
  const namespace = await kube.createNamespace('run');
  await kube.createServiceAccount(namespace, 'app');
  const dir = await mkdtemp(join(tmpdir(), 'krun-pod-'));
  const connection = await loadKubeconfig([plane.kubeconfig]);
  assert.ok(connection);
  const client = new KubeClient(connection);
  t.after(async () => {
    client.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { namespace, dir, client, ca: connection.ca };
}

const target = (namespace: string) => ({ namespace, serviceAccount: 'app', expirationSeconds: 3600 });

describe('ServiceAccount token files', () => {
  test('are written where a Pod has them, with tight modes, for the right audiences', async (t) => {
    const { namespace, dir, client, ca } = await workload(t);
    // When krun writes the token files
    const refreshAt = await writeTokenFiles(client, {
      baseDir: dir,
      target: target(namespace),
      istioAudience: 'istio-ca',
      ca,
      now: 1_000_000,
    });
    // Then the API token authenticates as the ServiceAccount for the API server's audience
    const saDir = join(dir, SERVICE_ACCOUNT_DIR);
    const token = await readFile(join(saDir, 'token'), 'utf8');
    const review = await kube.reviewToken(token, []);
    assert.equal(review.authenticated, true);
    assert.equal(review.user?.username, `system:serviceaccount:${namespace}:app`);
    assert.equal(await readFile(join(saDir, 'namespace'), 'utf8'), namespace);
    assert.equal(await readFile(join(saDir, 'ca.crt'), 'utf8'), ca);
    // And the mesh token only for istio-ca
    const istio = await readFile(join(dir, ISTIO_TOKEN_DIR, 'istio-token'), 'utf8');
    assert.equal((await kube.reviewToken(istio, ['istio-ca'])).authenticated, true);
    assert.notEqual((await kube.reviewToken(istio, [])).authenticated, true);
    // And credentials are owner-only, in kubelet's ..data layout
    assert.equal((await stat(join(saDir, 'token'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, ISTIO_TOKEN_DIR, 'istio-token'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(saDir, 'namespace'))).mode & 0o777, 0o644);
    assert.ok((await lstat(join(saDir, 'token'))).isSymbolicLink());
    assert.equal(await readlink(join(saDir, 'token')), '..data/token');
    // And the refresh is due at 80% of the one-hour lifetime
    assert.equal(refreshAt, 1_000_000 + 0.8 * 3600 * 1000);
  });

  test('a missing ServiceAccount is one clear error', async (t) => {
    const { namespace, dir, client } = await workload(t);
    await assert.rejects(
      writeTokenFiles(client, {
        baseDir: dir,
        target: { ...target(namespace), serviceAccount: 'nope' },
        istioAudience: 'istio-ca',
        now: 0,
      }),
      (err: Error & { hints?: string[] }) => {
        assert.equal(err.message, `ServiceAccount ${namespace}/nope does not exist`);
        assert.deepEqual(err.hints?.[0], `kubectl -n ${namespace} create serviceaccount nope`);
        return true;
      },
    );
  });

  test('are refreshed at 80% of their lifetime, and a failed refresh retries with backoff and recovers', async (t) => {
    const { namespace, dir, client } = await workload(t);
    const clock = new ManualClock();
    const ctx = testContext({ clock });
    const tokens = () =>
      writeTokenFiles(client, {
        baseDir: dir,
        target: target(namespace),
        istioAudience: 'istio-ca',
        now: clock.now().getTime(),
      });
    const tokenFile = join(dir, SERVICE_ACCOUNT_DIR, 'token');
    const stop = new AbortController();
    const loop = keepFresh(tokens, await tokens(), {
      what: 'token refresh',
      clock,
      log: ctx.log,
      signal: stop.signal,
    });
    t.after(async () => {
      stop.abort();
      await loop;
    });
    const first = await readFile(tokenFile, 'utf8');
    await waitFor('the refresh loop to sleep', async () => (clock.pending === 1 ? true : undefined));
    assert.equal(clock.requested.at(-1), 0.8 * 3600 * 1000);
    // When 80% of the lifetime passes, a new token replaces the old one
    clock.advance(0.8 * 3600 * 1000);
    const second = await waitFor('a refreshed token', async () => {
      const now = await readFile(tokenFile, 'utf8');
      return now !== first ? now : undefined;
    });
    assert.equal((await kube.reviewToken(second, [])).authenticated, true);
    // When the ServiceAccount disappears, the refresh fails, is logged, and the old token stays in place
    await waitFor('the next sleep', async () => (clock.pending === 1 ? true : undefined));
    await kube.request('DELETE', `/api/v1/namespaces/${namespace}/serviceaccounts/app`);
    clock.advance(0.8 * 3600 * 1000);
    await waitFor('the failure to be logged', async () =>
      ctx.logs().some((l) => l.severity === 'ERROR' && l.message.startsWith('token refresh failed')) ? true : undefined,
    );
    assert.equal(await readFile(tokenFile, 'utf8'), second);
    assert.equal(clock.requested.at(-1), 1000, 'first retry after 1 s');
    // When the ServiceAccount is back, the next retry succeeds
    await kube.createServiceAccount(namespace, 'app');
    clock.advance(1000);
    await waitFor('recovery', async () =>
      ctx.logs().some((l) => l.message === 'token refresh recovered') ? true : undefined,
    );
    const third = await readFile(tokenFile, 'utf8');
    assert.notEqual(third, second);
    assert.equal((await kube.reviewToken(third, [])).authenticated, true);
    assert.doesNotMatch(ctx.stderr(), /eyJ/, 'no token in the logs');
  });
});

describe('Secret and ConfigMap mounts', () => {
  test('follow the object: every key a file, updates swap atomically, removed keys disappear', async (t) => {
    const { namespace, dir, client } = await workload(t);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const path = `/api/v1/namespaces/${namespace}/secrets`;
    await kube.post(path, { metadata: { name: 'db' }, data: { user: b64('alice'), password: b64('s3cret') } });
    const mount = { kind: 'secret' as const, name: 'db', path: '/etc/db' };
    // When mounted
    assert.equal(await syncMount(client, namespace, mount, dir), true);
    const mounted = join(dir, 'etc/db');
    assert.equal(await readFile(join(mounted, 'user'), 'utf8'), 'alice');
    assert.equal(await readFile(join(mounted, 'password'), 'utf8'), 's3cret');
    assert.equal((await stat(join(mounted, 'password'))).mode & 0o777, 0o600);
    const firstVersion = await readlink(join(mounted, '..data'));
    // Unchanged objects touch nothing
    assert.equal(await syncMount(client, namespace, mount, dir), false);
    // When the Secret changes: a new key, a changed key, a removed key
    await kube.request('PUT', `${path}/db`, { metadata: { name: 'db' }, data: { user: b64('bob'), token: b64('t') } });
    assert.equal(await syncMount(client, namespace, mount, dir), true);
    assert.equal(await readFile(join(mounted, 'user'), 'utf8'), 'bob');
    assert.equal(await readFile(join(mounted, 'token'), 'utf8'), 't');
    await assert.rejects(readFile(join(mounted, 'password')), { code: 'ENOENT' });
    assert.notEqual(await readlink(join(mounted, '..data')), firstVersion);
    assert.deepEqual((await readdir(mounted)).filter((e) => e.startsWith('..2')).length, 1, 'the old version is gone');
  });

  test('one key of a ConfigMap, and clear errors for a missing object or key', async (t) => {
    const { namespace, dir, client } = await workload(t);
    await kube.post(`/api/v1/namespaces/${namespace}/configmaps`, {
      metadata: { name: 'app' },
      data: { 'settings.json': '{"a":1}', other: 'x' },
    });
    await syncMount(client, namespace, { kind: 'configmap', name: 'app', path: '/etc/app', key: 'settings.json' }, dir);
    assert.deepEqual(
      (await readdir(join(dir, 'etc/app'))).filter((e) => !e.startsWith('..')),
      ['settings.json'],
    );
    assert.equal((await stat(join(dir, 'etc/app/settings.json'))).mode & 0o777, 0o644);
    await assert.rejects(
      syncMount(client, namespace, { kind: 'configmap', name: 'app', path: '/x', key: 'missing' }, dir),
      /configmap app has no key "missing"/,
    );
    await assert.rejects(
      syncMount(client, namespace, { kind: 'secret', name: 'absent', path: '/y' }, dir),
      new RegExp(`secret absent not found in namespace ${namespace} \\(mounted at /y\\)`),
    );
  });
});

describe('in-cluster credentials', () => {
  test('reach the API server, and a rotated token file is read again on the next request', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'krun-incluster-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'token'), plane.access.token);
    await writeFile(join(dir, 'ca.crt'), plane.access.ca);
    await writeFile(join(dir, 'namespace'), 'kube-system');
    const { hostname, port } = new URL(plane.access.server);
    const connection = await inClusterConnection(
      { KUBERNETES_SERVICE_HOST: hostname, KUBERNETES_SERVICE_PORT: port },
      dir,
    );
    assert.ok(connection);
    const client = new KubeClient(connection);
    t.after(() => client.close());
    const ns = await client.get<{ metadata: { name: string } }>(`/api/v1/namespaces/${connection.namespace}`);
    assert.equal(ns.metadata.name, 'kube-system');
    await writeFile(join(dir, 'token'), 'rotated-but-wrong');
    await assert.rejects(
      client.get('/api/v1/namespaces/default'),
      /the API server rejected krun's credentials \(get \/api\/v1\/namespaces\/default\)/,
    );
  });
});
