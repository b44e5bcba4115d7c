// `krun run` as the container entrypoint: a real process against the real control plane, checking exit codes,
// the app's environment, signal forwarding, readiness and the bad-input errors that stop krun before the app.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { krun, spawnKrun } from '../support/cli.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { TestKube } from '../support/kube.ts';
import { launcherWorkload, writeKubeconfig } from '../support/kubeconfig.ts';
import { waitUntilGone } from '../support/process-gone.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const work = await mkdtemp(join(tmpdir(), 'krun-run-'));
await chmod(work, 0o755); // the K8S_UID test's app user must reach its files
after(() => rm(work, { recursive: true, force: true }));

let n = 0;
/** A fresh directory and an environment with nothing krun could discover by accident (no HOME kubeconfig). */
async function sandbox(extra: Record<string, string> = {}) {
  const dir = join(work, `case-${++n}`);
  const home = join(dir, 'home');
  await mkdir(dir, { recursive: true });
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    MESH_BASE_DIR: dir,
    PORT_http: '-',
    KRUN_HBONE_PORT: '-',
    ...extra,
  };
  return { dir, env };
}

const workload = () => launcherWorkload(kube, work, 'krun-run');

describe('krun run, standalone', () => {
  test('with nothing configured the app runs with a Pod-like environment and its exit status is krun’s', async () => {
    const { dir, env } = await sandbox({ PORT_http: '9999' });
    const script = `echo "$PORT $POD_NAMESPACE $SERVICE_ACCOUNT $KRUN_BASE_DIR" > ${dir}/env.txt; exit 3`;
    const r = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: env, env: { HOSTNAME: 'web-1' } });
    assert.equal(r.status, 3);
    assert.equal(r.stdout, '');
    assert.equal(await readFile(join(dir, 'env.txt'), 'utf8'), `9999 default default ${dir}\n`);
    const standalone = r.stderr.split('\n').filter((l) => l.includes('running standalone'));
    assert.equal(standalone.length, 1, r.stderr);
    assert.equal(JSON.parse(standalone[0] ?? '').severity, 'INFO');
  });

  test('an app killed by a signal gives 128 + the signal number', async () => {
    const { env } = await sandbox();
    const r = await krun(['run', '--', 'sh', '-c', 'kill -KILL $$'], { cleanEnv: env });
    assert.equal(r.status, 137);
  });

  test('SIGTERM is forwarded to the app, and krun exits with the status the app chose', async () => {
    const { env } = await sandbox();
    const app =
      "process.on('SIGTERM', () => { console.log('app got SIGTERM'); process.exit(7) }); setInterval(() => {}, 1000)";
    const p = spawnKrun(['run', '--', process.execPath, '-e', app], { cleanEnv: env });
    await p.waitForLog('app started');
    await new Promise((r) => setTimeout(r, 300)); // let the app install its handler
    p.child.kill('SIGTERM');
    const r = await p.exited;
    assert.equal(r.status, 7);
    assert.equal(r.stdout, 'app got SIGTERM\n');
  });

  test('an app that ignores SIGTERM is killed after the grace period', async () => {
    const { env } = await sandbox({ KRUN_TERMINATION_GRACE: '0.5' });
    const p = spawnKrun(['run', '--', 'sh', '-c', 'trap "" TERM; while :; do sleep 0.05; done'], { cleanEnv: env });
    await p.waitForLog('app started');
    p.child.kill('SIGTERM');
    const r = await p.exited;
    assert.equal(r.status, 137);
    assert.match(r.stderr, /app still running 0.5 s after SIGTERM; killing it/);
  });

  test('an app that SIGTERM kills gives 143 (128 + 15), as any signal that kills it', async () => {
    const { env } = await sandbox();
    const p = spawnKrun(['run', '--', 'sleep', '30'], { cleanEnv: env });
    await p.waitForLog('app started');
    p.child.kill('SIGTERM');
    const r = await p.exited;
    assert.equal(r.status, 143, r.stderr);
    assert.match(r.stderr, /"message":"app exited","pid":\d+,"status":143,"signal":"SIGTERM"/);
  });

  test('without an app (and nothing listening) krun runs until SIGTERM, then exits 0', async () => {
    const { env } = await sandbox();
    const p = spawnKrun(['run'], { cleanEnv: env });
    await p.waitForLog('no app command given; running until signalled');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(p.child.exitCode, null, `krun ended on its own: ${p.stderr()}`);
    p.child.kill('SIGTERM');
    const r = await p.exited;
    assert.equal(r.status, 0, r.stderr);
  });

  test('SIGTERM while krun waits for the app to be ready still ends with the app’s status', async () => {
    const { dir, env } = await sandbox({ PORT_http: '1', KRUN_STARTUP_TIMEOUT: '600' });
    const app = `trap "exit 7" TERM; touch ${dir}/trapped; while :; do sleep 0.05; done`;
    const p = spawnKrun(['run', '--', 'sh', '-c', app], { cleanEnv: env });
    await waitFor('the app to trap SIGTERM', async () => (existsSync(join(dir, 'trapped')) ? true : undefined));
    p.child.kill('SIGTERM');
    const r = await p.exited;
    assert.equal(r.status, 7, r.stderr);
    assert.doesNotMatch(r.stderr, /app ready/);
  });

  test('a second signal during the grace period exits at once (130) and takes the app along', async () => {
    const { dir, env } = await sandbox({ KRUN_TERMINATION_GRACE: '600' });
    const app = `echo $$ > ${dir}/app.pid; trap "echo got TERM" TERM; while :; do sleep 0.05; done`;
    const p = spawnKrun(['run', '--', 'sh', '-c', app], { cleanEnv: env });
    await p.waitForLog('app started');
    p.child.kill('SIGTERM');
    await waitFor('the app to get SIGTERM', async () => (p.stdout() === 'got TERM\n' ? true : undefined));
    p.child.kill('SIGTERM');
    const r = await p.exited;
    assert.equal(r.status, 130, r.stderr);
    // Killed, not orphaned
    await waitUntilGone(Number(await readFile(join(dir, 'app.pid'), 'utf8')), 'the app');
  });

  test('waits for the app port before declaring it ready', async () => {
    const { env } = await sandbox({ PORT_http: '0' });
    const port = 20000 + Math.floor(Math.random() * 20000);
    const app = `require('http').createServer((q, s) => s.end()).listen(${port}, '127.0.0.1', () => setTimeout(() => process.exit(0), 500))`;
    const r = await krun(['run', '--app-port', String(port), '--', process.execPath, '-e', app], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`"message":"app ready","probe":"a TCP connection to 127.0.0.1:${port}"`));
  });

  test('a readiness timeout is a clear error, and the app does not outlive krun', async () => {
    const { dir, env } = await sandbox({ PORT_http: '1', KRUN_STARTUP_TIMEOUT: '0.5', KRUN_TERMINATION_GRACE: '2' });
    const r = await krun(['run', '--', 'sh', '-c', `echo $$ > ${dir}.pid; exec sleep 30`], { cleanEnv: env });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /error: the app was not ready after 0.5 s \(waited for a TCP connection to 127.0.0.1:1\)/);
    assert.match(r.stderr, /Try:\n {2}check that the app listens on that port/);
    const pid = Number(await readFile(`${dir}.pid`, 'utf8'));
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  });
});

describe('krun run, with a cluster', () => {
  test('writes tokens and mounts with least-privilege RBAC before the app starts', async () => {
    const { ns, kubeconfig } = await workload();
    await kube.post(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'cfg' }, data: { 'app.conf': 'x=1' } });
    const { dir, env } = await sandbox({
      KUBECONFIG: kubeconfig,
      WORKLOAD_SERVICE_ACCOUNT: 'app',
      KRUN_MOUNTS: 'configmap:cfg:/etc/cfg',
    });
    const script = `cat $KRUN_SERVICE_ACCOUNT_DIR/token > ${dir}/seen-token; cat /dev/null ${dir}/etc/cfg/app.conf > ${dir}/seen-conf`;
    const r = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    // The namespace came from the kubeconfig context; the token is the app's, not the launcher's
    const token = await readFile(join(dir, 'seen-token'), 'utf8');
    assert.equal((await kube.reviewToken(token, [])).user?.username, `system:serviceaccount:${ns}:app`);
    assert.equal(await readFile(join(dir, 'seen-conf'), 'utf8'), 'x=1');
    assert.doesNotMatch(r.stderr, /eyJ/, 'tokens never appear in logs');
  });

  test('K8S_UID runs the app as that user, owning its token files', async () => {
    assert.equal(process.getuid?.(), 0, 'this test needs root, as krun needs it to switch users');
    const { kubeconfig } = await workload();
    const { dir, env } = await sandbox({ KUBECONFIG: kubeconfig, WORKLOAD_SERVICE_ACCOUNT: 'app', K8S_UID: '65534' });
    const r = await krun(
      ['run', '--', 'sh', '-c', 'id -u; cat "$KRUN_SERVICE_ACCOUNT_DIR/token" >/dev/null && echo readable'],
      {
        cleanEnv: env,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '65534\nreadable\n');
    const token = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount/token');
    assert.deepEqual([(await stat(token)).uid, (await stat(token)).mode & 0o777], [65534, 0o600]);
  });

  test('mounted objects are re-synced while the app runs', async () => {
    const { ns, kubeconfig } = await workload();
    const path = `/api/v1/namespaces/${ns}/secrets`;
    await kube.post(path, { metadata: { name: 's' }, stringData: { v: 'one' } });
    const { dir, env } = await sandbox({
      KUBECONFIG: kubeconfig,
      WORKLOAD_SERVICE_ACCOUNT: 'app',
      KRUN_MOUNTS: 'secret:s:/s',
      KRUN_RESYNC_INTERVAL: '0.1',
    });
    const file = join(dir, 's/v');
    const app = `for i in $(seq 100); do [ "$(cat ${file})" = two ] && exit 0; sleep 0.1; done; exit 9`;
    const p = spawnKrun(['run', '--', 'sh', '-c', app], { cleanEnv: env });
    await p.waitForLog('app started');
    await kube.request('PUT', `${path}/s`, { metadata: { name: 's' }, stringData: { v: 'two' } });
    const r = await p.exited;
    assert.equal(r.status, 0, r.stderr);
  });

  test('mesh-env supplies settings the environment leaves unset; the environment wins; --print-config says which', async (t) => {
    const { kubeconfig } = await workload();
    // mesh-env is cluster-wide state every test file shares: it lives only as long as this test
    const cm = '/api/v1/namespaces/istio-system/configmaps';
    const rbac = '/apis/rbac.authorization.k8s.io/v1/namespaces/istio-system';
    t.after(async () => {
      for (const path of [
        `${cm}/mesh-env`,
        `${rbac}/rolebindings/krun-mesh-env-reader`,
        `${rbac}/roles/krun-mesh-env-reader`,
      ]) {
        await kube.request('DELETE', path);
      }
    });
    await kube.post(cm, {
      metadata: { name: 'mesh-env' },
      data: { PROJECT_ID: 'mesh-project', CLUSTER_NAME: 'c1', PORT_grpc: '9090', PORT_admin: '9901' },
    });
    const { env } = await sandbox({ KUBECONFIG: kubeconfig, CLUSTER_NAME: 'from-env', PORT_admin: '127.0.0.2:7000' });
    // Without read access to mesh-env, krun warns and goes on with the environment alone
    const denied = await krun(['run', '--print-config', '-o', 'json'], { cleanEnv: env });
    assert.equal(denied.status, 0, denied.stderr);
    assert.deepEqual(JSON.parse(denied.stdout).projectId, { source: 'unset' });
    assert.match(
      denied.stderr,
      /"severity":"WARNING","time":"[^"]+","message":"can't read istio-system\/mesh-env; using the environment only"/,
    );
    // Granted as the cluster side does (every authenticated workload may read mesh-env)
    await kube.grant(
      'istio-system',
      'krun-mesh-env-reader',
      [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['mesh-env'], verbs: ['get'] }],
      [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }],
    );
    const r = await waitFor('RBAC to allow mesh-env', async () => {
      const res = await krun(['run', '--print-config', '-o', 'json'], { cleanEnv: env });
      return JSON.parse(res.stdout).projectId.value ? res : undefined;
    });
    assert.equal(r.status, 0, r.stderr);
    const config = JSON.parse(r.stdout);
    assert.deepEqual(config.projectId, { value: 'mesh-project', source: 'mesh-env PROJECT_ID' });
    assert.deepEqual(config.trustDomain, { value: 'mesh-project.svc.id.goog', source: 'derived from PROJECT_ID' });
    assert.deepEqual(config.clusterName, { value: 'from-env', source: 'env CLUSTER_NAME' });
    assert.deepEqual(config['ports.grpc'], { value: '127.0.0.1:9090', source: 'mesh-env PORT_grpc' });
    assert.deepEqual(config['ports.admin'], { value: '127.0.0.2:7000', source: 'env PORT_admin' });
    const flagged = await krun(['run', '--print-config', '-o', 'json', '--cluster', 'from-flag'], { cleanEnv: env });
    assert.deepEqual(JSON.parse(flagged.stdout).clusterName, { value: 'from-flag', source: 'flag --cluster' });
  });
});

describe('krun run, bad input stops krun before the app', () => {
  async function refused(extra: Record<string, string>, args: string[] = []) {
    const { dir, env } = await sandbox(extra);
    const r = await krun(['run', ...args, '--', 'touch', join(dir, 'app-ran')], { cleanEnv: env });
    assert.equal(existsSync(join(dir, 'app-ran')), false, 'the app must not start');
    assert.equal(r.stdout, '');
    return r;
  }

  test('malformed settings are usage errors naming the setting', async () => {
    const mounts = await refused({ KRUN_MOUNTS: 'volume:x:/y' });
    assert.equal(mounts.status, 2);
    assert.match(mounts.stderr, /^error: env KRUN_MOUNTS: "volume:x:\/y" must start with secret: or configmap:\n/m);
    const port = await refused({ PORT_http: 'eighty' });
    assert.equal(port.status, 2);
    assert.match(port.stderr, /error: env PORT_http is "eighty": not a port or host:port/);
    const grace = await refused({}, ['--termination-grace', 'soon']);
    assert.equal(grace.status, 2);
    assert.match(grace.stderr, /error: flag --termination-grace is "soon": not a number of seconds/);
  });

  test('a KUBECONFIG that does not exist is an error, not standalone mode', async () => {
    const r = await refused({ KUBECONFIG: '/nonexistent/kubeconfig' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /error: env KUBECONFIG names \/nonexistent\/kubeconfig, which does not exist/);
  });

  test('an unreachable API server', async () => {
    const kubeconfig = writeKubeconfig(join(work, 'unreachable.kubeconfig'), {
      ...plane.access,
      server: 'https://127.0.0.1:1',
    });
    const r = await refused({ KUBECONFIG: kubeconfig });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /error: can't reach the Kubernetes API server https:\/\/127.0.0.1:1: .*ECONNREFUSED/);
  });

  test('a missing ServiceAccount, and a forbidden TokenRequest, name what to fix', async () => {
    const { ns, kubeconfig } = await workload();
    const missing = await refused({ KUBECONFIG: kubeconfig, WORKLOAD_SERVICE_ACCOUNT: 'ghost' });
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      new RegExp(`error: forbidden: krun may not create tokens for ServiceAccount ${ns}/ghost`),
    );
    assert.match(missing.stderr, /Try:\n {2}grant "create" on "serviceaccounts\/token" \(resourceName ghost\)/);
    const admin = await refused({
      KUBECONFIG: plane.kubeconfig,
      WORKLOAD_NAMESPACE: ns,
      WORKLOAD_SERVICE_ACCOUNT: 'ghost',
    });
    assert.equal(admin.status, 1);
    assert.match(
      admin.stderr,
      new RegExp(
        `error: ServiceAccount ${ns}/ghost does not exist\\n\\nTry:\\n {2}kubectl -n ${ns} create serviceaccount ghost`,
      ),
    );
  });
});
