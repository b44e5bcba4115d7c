// `krun run` in proxyless mode against the real istiod and pilot-agent: the agent gets a workload certificate
// for the workload's ServiceAccount before the app starts, the app sees it, the agent is stopped after the app, and
// an agent that dies while the app runs is restarted with backoff.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { krun, spawnKrun } from '../support/cli.ts';
import { rootCertOf } from '../support/control-plane/istio.ts';
import { freePort } from '../support/control-plane/ports.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { TestKube } from '../support/kube.ts';
import { assertLogOrder } from './support/log-order.ts';
import { meshWorkload } from './support/workload.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const work = await mkdtemp(join(tmpdir(), 'krun-mesh-'));
after(() => rm(work, { recursive: true, force: true }));

/** The pids of the pilot-agent processes krun started, in order, from its JSON log. */
function agentPids(stderr: string): number[] {
  return stderr
    .split('\n')
    .filter((l) => l.includes('"message":"pilot-agent started"'))
    .map((l) => (JSON.parse(l) as { pid: number }).pid);
}

describe('krun run, proxyless mesh', () => {
  test('the app starts after pilot-agent got a certificate for its ServiceAccount, chained to istiod', async () => {
    // Given a workload namespace where istiod published its root, and no Envoy on this machine
    const { ns, dir, env } = await meshWorkload(plane, kube, work);
    const root = new X509Certificate(await rootCertOf(kube, ns));
    // When krun runs an app that copies what it sees
    const script = [
      `cat "$KRUN_MESH_CERT_CHAIN" > ${dir}/seen-chain.pem`,
      `test -s "$KRUN_MESH_KEY" && test -s "$GRPC_XDS_BOOTSTRAP" && echo ok > ${dir}/seen-files`,
      `echo "$KRUN_MESH_MODE $GRPC_XDS_BOOTSTRAP" > ${dir}/seen-env`,
    ].join('; ');
    // (with the original's debug knobs, which become pilot-agent flags)
    const debug = { XDS_AGENT_DEBUG: 'dns:debug', ENVOY_LOG_LEVEL: 'debug' };
    const r = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: { ...env, ...debug } });
    // Then the mode was decided and logged with its reason, and the app ran after the agent was ready
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /FLAG: --log_output_level="dns:debug"\n/);
    assert.match(r.stderr, /FLAG: --proxyLogLevel="debug"\n/);
    assert.match(r.stderr, /"message":"mesh mode proxyless: no Envoy binary"/);
    assertLogOrder(r.stderr, ['pilot-agent ready', 'app started', 'app exited', 'pilot-agent stopped']);
    assert.equal(await readFile(join(dir, 'seen-files'), 'utf8'), 'ok\n');
    assert.equal(
      await readFile(join(dir, 'seen-env'), 'utf8'),
      `proxyless ${join(dir, 'etc/istio/proxy/grpc_bootstrap.json')}\n`,
    );
    // And the certificate names the namespace and ServiceAccount and is signed by istiod's root
    const leaf = new X509Certificate(await readFile(join(dir, 'seen-chain.pem'), 'utf8'));
    assert.equal(leaf.subjectAltName, `URI:spiffe://cluster.local/ns/${ns}/sa/app`);
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), 'leaf is signed by the istiod root');
    // And the injector's files are in place
    assert.equal(
      await readFile(join(dir, 'etc/istio/pod/labels'), 'utf8'),
      `app="${ns}"\nsecurity.istio.io/tlsMode="istio"\nservice.istio.io/canonical-name="${ns}"\nservice.istio.io/canonical-revision="latest"\nversion="latest"`,
    );
    assert.equal(await readFile(join(dir, 'var/run/secrets/istio/root-cert.pem'), 'utf8'), root.toString());
  });

  test('a killed pilot-agent is restarted with backoff while the app keeps running', async () => {
    // Given krun running an app that waits for the test, with the agent ready
    const { ns, dir, env } = await meshWorkload(plane, kube, work);
    await rootCertOf(kube, ns);
    const chain = join(dir, 'var/run/secrets/istio.io/cert-chain.pem');
    const script = `while [ ! -e ${dir}/done ]; do sleep 0.1; done; echo "app ran to the end"`;
    const run = spawnKrun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    await run.waitForLog('"message":"app started"', 60_000);
    const serial = async () => new X509Certificate(await readFile(chain, 'utf8')).serialNumber;
    for (const [kill, backoff] of [
      [1, 1],
      [2, 2],
    ] as const) {
      // When the agent is killed
      const pids = agentPids(run.stderr());
      assert.equal(pids.length, kill, run.stderr());
      const before = await serial();
      process.kill(pids.at(-1) as number, 'SIGKILL');
      // Then krun says so, waits the backoff (doubling), and starts a new agent that gets a new certificate
      await run.waitForLog(`pilot-agent exited unexpectedly (killed by SIGKILL); restarting in ${backoff} s`);
      await waitFor('a new pilot-agent', async () => (agentPids(run.stderr()).length === kill + 1 ? true : undefined));
      await waitFor('a certificate from the new agent', async () =>
        (await serial().catch(() => before)) !== before ? true : undefined,
      );
    }
    // And the app was never interrupted: it ends normally, then the last agent is stopped
    await writeFile(join(dir, 'done'), '');
    const r = await run.exited;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'app ran to the end\n');
    assertLogOrder(r.stderr, ['app exited', 'pilot-agent stopped']);
    assert.equal(agentPids(r.stderr).length, 3);
  });

  test('SIGTERM reaches the app first, the agent only after the app exited, and krun exits with the app’s status', async () => {
    // Given krun running an app that, on SIGTERM, checks that the agent still runs (it may need the mesh to drain)
    const { ns, dir, env } = await meshWorkload(plane, kube, work);
    await rootCertOf(kube, ns);
    const script = [
      `trap 'kill -0 "$(cat ${dir}/agent.pid)" && echo "agent up while the app drains"; exit 3' TERM`,
      `touch ${dir}/trapped`,
      'while :; do sleep 0.05; done',
    ].join('; ');
    const run = spawnKrun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    await waitFor(
      'the app to trap SIGTERM',
      async () => (await readFile(join(dir, 'trapped')).catch(() => undefined)) && true,
    );
    const [agent] = agentPids(run.stderr());
    await writeFile(join(dir, 'agent.pid'), String(agent));
    // When krun gets SIGTERM
    run.child.kill('SIGTERM');
    const r = await run.exited;
    // Then the app drained with the agent still up, its status is krun's, and the agent was stopped afterwards
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, 'agent up while the app drains\n');
    assertLogOrder(r.stderr, ['app exited', 'pilot-agent stopped']);
    assert.throws(() => process.kill(agent as number, 0), { code: 'ESRCH' });
  });

  test('an unreachable istiod is a timeout with the agent’s log tail, and the app never starts', async () => {
    const { ns, dir, env } = await meshWorkload(plane, kube, work);
    await rootCertOf(kube, ns);
    const r = await krun(['run', '--', 'sh', '-c', `touch ${dir}/app-ran`], {
      cleanEnv: {
        ...env,
        KRUN_MESH_MODE: 'proxyless',
        XDS_ADDR: `127.0.0.1:${await freePort()}`,
        KRUN_STARTUP_TIMEOUT: '3',
      },
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /"message":"mesh mode proxyless: asked for by env KRUN_MESH_MODE"/);
    assert.match(r.stderr, /error: pilot-agent was not ready after 3 s \(waited for the workload certificate in /);
    assert.match(r.stderr, /--- last lines of pilot-agent ---\n(.+\n){3,}/);
    assert.match(r.stderr, /connection refused/);
    await assert.rejects(readFile(join(dir, 'app-ran')), { code: 'ENOENT' });
  });
});
