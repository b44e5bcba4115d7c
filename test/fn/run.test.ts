// `krun fn run` end to end through the built CLI: real Pods, NetworkPolicies and ConfigMaps in the real
// kube-apiserver, driven through their phases by the simulated node; the attach stream and container log from the
// loopback front speaking the remote-command WebSocket protocol (see test/support/fn).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, krun, spawnKrun } from '../support/cli.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { V4 } from '../support/fn/attach-front.ts';
import { type FnWorld, fnWorld } from '../support/fn/world.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';

const RESOURCE_LIST = `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: demo
  data:
    a: "b"
functionConfig:
  apiVersion: v1
  kind: ConfigMap
  metadata:
    name: labels
  data:
    team: platform
`;

/** The Pod name krun printed in its debug log (KRUN_VERBOSE). */
function podName(stderr: string): string {
  const m = /"pod":"(krun-fn-[0-9a-f]+)"/.exec(stderr);
  assert.ok(m?.[1], `no pod name in krun's log:\n${stderr}`);
  return m[1];
}

describe('krun fn run', () => {
  let world: FnWorld;
  before(async () => {
    world = await fnWorld();
  });
  after(() => world?.stop());

  const run = (args: string[], input = RESOURCE_LIST, env: Record<string, string> = {}) =>
    krun(['fn', 'run', ...args], { input, env: { KUBECONFIG: world.kubeconfig, KRUN_VERBOSE: '1', ...env } });

  const nothingLeft = async () => {
    assert.deepEqual(await world.names('pods'), []);
    assert.deepEqual(await world.names('networkpolicies'), []);
    assert.deepEqual(await world.names('configmaps'), []);
  };

  test('echo: stdout is the input byte for byte over v5, exit 0, from a locked-down Pod that is then deleted', async () => {
    const result = await run(['krun.test/fn/echo']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, RESOURCE_LIST);
    assert.equal(world.front.sessions.at(-1), 'v5.channel.k8s.io');
    const seen = world.node.seen.get(podName(result.stderr));
    assert.ok(seen);
    const { spec } = seen.pod as unknown as {
      spec: Record<string, unknown> & { containers: Record<string, unknown>[] };
    };
    assert.equal(spec.restartPolicy, 'Never');
    assert.equal(spec.automountServiceAccountToken, false);
    assert.equal(spec.enableServiceLinks, false);
    assert.deepEqual(spec.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65534,
      runAsGroup: 65534,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const [container] = spec.containers;
    assert.equal(container?.stdin, true);
    assert.equal(container?.stdinOnce, true);
    assert.deepEqual(container?.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    assert.deepEqual((container?.resources as { limits: unknown } | undefined)?.limits, { cpu: '1', memory: '512Mi' });
    // --network none (the default): the deny-all policy existed before the Pod did.
    assert.deepEqual(seen.networkPolicies, [seen.pod.metadata.name]);
    await nothingLeft();
  });

  test('set-label: the function transforms the ResourceList; its stderr reaches stderr', async () => {
    const result = await run(['krun.test/fn/set-label']);
    assert.equal(result.status, 0, result.stderr);
    const { parse } = await import('yaml');
    const out = parse(result.stdout) as { items: { metadata: { labels: Record<string, string> } }[] };
    assert.deepEqual(out.items[0]?.metadata.labels, { team: 'platform' });
    assert.match(result.stderr, /^set-label: labelled 1 items$/m);
  });

  test("exit 3: krun exits with the function's status and shows its stderr", async () => {
    const result = await run(['krun.test/fn/exit3']);
    assert.equal(result.status, 3);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      new RegExp(`^exit3: refusing ${Buffer.byteLength(RESOURCE_LIST)} bytes of input$`, 'm'),
    );
    await nothingLeft();
  });

  test('stderr written before the attach is recovered from the log, once; stdout stays exact', async () => {
    const result = await run(['krun.test/fn/stderr-first']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, RESOURCE_LIST);
    assert.equal(result.stderr.split('stderr-first: starting up\n').length, 2, result.stderr);
    assert.match(result.stderr, /^stderr-first: done$/m);
    assert.ok(result.stderr.indexOf('starting up') < result.stderr.indexOf('stderr-first: done'));
  });

  test('5 MB of output arrive byte for byte', async () => {
    const result = await run(['krun.test/fn/big']);
    assert.equal(result.status, 0, result.stderr);
    const lines: string[] = [];
    for (let n = 0; lines.length * 100 < 5 * 1024 * 1024; n++) lines.push(`${`line ${n}`.padEnd(99, '.')}\n`);
    const expected = Buffer.from(lines.join('').slice(0, 5 * 1024 * 1024));
    assert.equal(result.stdoutBytes.length, expected.length);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(sha(result.stdoutBytes), sha(expected));
  });

  test('mounts become ConfigMap volumes, -e sets the environment, --network host creates no policy', async () => {
    const data = join(world.dir, 'data');
    mkdirSync(join(data, 'sub'), { recursive: true });
    writeFileSync(join(data, 'a.txt'), 'alpha\n');
    writeFileSync(join(data, 'sub', 'b.txt'), 'beta\n');
    const file = join(world.dir, 'c.json');
    writeFileSync(file, '{"c":1}');
    const result = await run(
      [
        'krun.test/fn/inspect',
        `--mount=type=bind,source=${data},target=/data,readonly`,
        `--mount=type=bind,source=${file},target=/etc/fn/c.json,readonly`,
        '-e',
        'FN_MODE=strict',
        '-e',
        'FN_PASS',
        '-e',
        'FN_UNSET',
        '--network',
        'host',
        '--',
        '/data/a.txt',
        '/data/sub/b.txt',
        '/etc/fn/c.json',
      ],
      RESOURCE_LIST,
      { FN_PASS: 'from-caller' },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      args: ['/data/a.txt', '/data/sub/b.txt', '/etc/fn/c.json'],
      env: { FN_MODE: 'strict', FN_PASS: 'from-caller' },
      files: { '/data/a.txt': 'alpha\n', '/data/sub/b.txt': 'beta\n', '/etc/fn/c.json': '{"c":1}' },
      input: Buffer.byteLength(RESOURCE_LIST),
    });
    const name = podName(result.stderr);
    const seen = world.node.seen.get(name);
    // (istiod adds its own ConfigMaps to every namespace)
    assert.deepEqual(seen?.configMaps.filter((n) => n.startsWith(name)).sort(), [`${name}-mount-0`, `${name}-mount-1`]);
    assert.deepEqual(seen?.networkPolicies, []);
    await nothingLeft();
  });

  test('a mount too big for a ConfigMap is streamed as tar to the init container, then mounted read-only', async () => {
    const big = join(world.dir, 'big');
    mkdirSync(join(big, 'sub'), { recursive: true });
    const bulk = 'x'.repeat(1024 * 1024);
    writeFileSync(join(big, 'bulk.txt'), bulk);
    writeFileSync(join(big, 'sub', 'small.txt'), 'small\n');
    const result = await run(
      [
        'krun.test/fn/inspect',
        `--mount=type=bind,source=${big},target=/big,readonly`,
        '--',
        '/big/sub/small.txt',
        '/big/bulk.txt',
      ],
      RESOURCE_LIST,
      { KRUN_FN_HELPER_IMAGE: 'krun.test/fn/untar' },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout).files, { '/big/sub/small.txt': 'small\n', '/big/bulk.txt': bulk });
    const name = podName(result.stderr);
    const seen = world.node.seen.get(name);
    assert.deepEqual(
      seen?.configMaps.filter((n) => n.startsWith(name)),
      [],
    );
    const init = seen?.pod.spec.initContainers?.[0];
    assert.equal(init?.image, 'krun.test/fn/untar');
    assert.deepEqual(init?.command, ['tar', '-x', '-f', '-', '-C', '/krun-mounts']);
    await nothingLeft();
  });

  test('a writable mount is refused before anything is created', async () => {
    const result = await run(['krun.test/fn/echo', `--mount=type=bind,source=${world.dir},target=/data`]);
    assert.equal(result.status, 125);
    assert.match(result.stderr, /writable bind mounts are not supported/);
  });

  test('an image that cannot be pulled fails fast with 125, naming the image and the reason', async () => {
    const result = await run(['krun.test/fn/pull-error:v1']);
    assert.equal(result.status, 125);
    assert.match(
      result.stderr,
      /error: image krun\.test\/fn\/pull-error:v1 can't be pulled: (ErrImagePull|ImagePullBackOff)/,
    );
    await nothingLeft();
  });

  test('an unschedulable Pod fails fast with 125 and the scheduler message', async () => {
    const result = await run(['krun.test/fn/unschedulable']);
    assert.equal(result.status, 125);
    assert.match(
      result.stderr,
      /error: no node can run the function's Pod: 0\/1 nodes are available: 1 Insufficient memory/,
    );
    assert.match(result.stderr, /KRUN_FN_MEMORY/);
    await nothingLeft();
  });

  test('an OOM-killed function exits 137 and says so', async () => {
    const result = await run(['krun.test/fn/oom', '--memory', '64Mi']);
    assert.equal(result.status, 137);
    assert.match(
      result.stderr,
      /error: the function krun\.test\/fn\/oom was killed for using more memory than its limit \(OOMKilled\)/,
    );
    await nothingLeft();
  });

  test('a Pod that never starts times out with 125 and is deleted', async () => {
    const result = await run(['krun.test/fn/ignored', '--start-timeout', '2s']);
    assert.equal(result.status, 125);
    assert.match(result.stderr, /error: the function's Pod did not start within 2s \(still Pending\)/);
    await nothingLeft();
  });

  test('Ctrl-C deletes the Pod, its policy and its ConfigMap, and exits 130', async () => {
    const file = join(world.dir, 'c.json');
    writeFileSync(file, '{}');
    const krunProcess = spawnKrun(
      ['fn', 'run', 'krun.test/fn/sleep', `--mount=type=bind,source=${file},target=/c.json,readonly`],
      { input: RESOURCE_LIST, env: { KUBECONFIG: world.kubeconfig, KRUN_VERBOSE: '1' } },
    );
    await krunProcess.waitForLog('"message":"attached"');
    const name = podName(krunProcess.stderr());
    assert.deepEqual(await world.names('pods'), [name]);
    assert.deepEqual(await world.names('configmaps'), [`${name}-mount-0`]);
    krunProcess.child.kill('SIGINT');
    const result = await krunProcess.exited;
    assert.equal(result.status, 130, result.stderr);
    await nothingLeft();
  });

  test('Ctrl-C while stdin is still open (a terminal) stops the run too', async () => {
    const child = spawn(process.execPath, [BIN, 'fn', 'run', 'krun.test/fn/echo'], {
      env: { ...process.env, CI: 'true', KUBECONFIG: world.kubeconfig, KRUN_VERBOSE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = once(child, 'close');
    child.stdin.write('apiVersion: config.kubernetes.io/v1\n');
    await waitFor('krun attached', async () => (stderr.includes('"message":"attached"') ? true : undefined));
    child.kill('SIGINT');
    // A krun stuck reading stdin would never exit: fail instead of hanging.
    const stuck = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [status] = await exited;
    clearTimeout(stuck);
    assert.equal(status, 130, stderr);
    await nothingLeft();
  });
});

describe('krun fn run interrupted before the server answered the Pod creation', () => {
  let world: FnWorld;
  before(async () => {
    world = await fnWorld({ withholdPodCreated: true });
  });
  after(() => world?.stop());

  test('Ctrl-C still deletes the Pod the server created, and the objects made before it', async () => {
    const krunProcess = spawnKrun(['fn', 'run', 'krun.test/fn/echo'], {
      input: RESOURCE_LIST,
      env: { KUBECONFIG: world.kubeconfig },
    });
    await waitFor('the Pod to exist', async () => ((await world.names('pods')).length > 0 ? true : undefined));
    krunProcess.child.kill('SIGINT');
    const result = await krunProcess.exited;
    assert.equal(result.status, 130, result.stderr);
    assert.deepEqual(await world.names('pods'), []);
    assert.deepEqual(await world.names('networkpolicies'), []);
  });
});

describe('krun fn run when the connection of its Pod watch is cut', () => {
  let world: FnWorld;
  before(async () => {
    world = await fnWorld({ cutWatchesAfterMs: 300 });
  });
  after(() => world?.stop());

  test('the watch is resumed: a Pod that never starts still ends at the start timeout (125), not at the cut', async () => {
    const result = await krun(['fn', 'run', 'krun.test/fn/ignored', '--start-timeout', '3s'], {
      input: RESOURCE_LIST,
      env: { KUBECONFIG: world.kubeconfig },
    });
    assert.equal(result.status, 125, result.stderr);
    assert.match(result.stderr, /error: the function's Pod did not start within 3s \(still Pending\)/);
    assert.deepEqual(await world.names('pods'), []);
  });
});

describe('krun fn run against the real apiserver alone (no kubelet behind it)', () => {
  let world: FnWorld;
  before(async () => {
    world = await fnWorld();
  });
  after(() => world?.stop());

  test("the apiserver's own attach refusal is reported (125) and the Pod is deleted", async () => {
    // Straight to the apiserver, not the front: it authorizes the attach, then cannot reach the Pod's kubelet.
    const direct = writeKubeconfig(join(world.dir, 'direct.kubeconfig'), world.kube.access, world.namespace);
    const result = await krun(['fn', 'run', 'krun.test/fn/sleep'], {
      input: RESOURCE_LIST,
      env: { KUBECONFIG: direct },
    });
    assert.equal(result.status, 125, result.stderr);
    assert.match(
      result.stderr,
      /^error: attach to pods\/krun-fn-[0-9a-f]+ in namespace fn-[0-9a-f]+ failed: .*sim-node/m,
    );
    assert.deepEqual(world.front.sessions, []);
    assert.deepEqual(await world.names('pods'), []);
  });
});

describe('krun fn run against an API server without v5.channel.k8s.io', () => {
  let world: FnWorld;
  before(async () => {
    world = await fnWorld({ protocols: [V4] });
  });
  after(() => world?.stop());

  test('refuses with 125 and says stdin EOF cannot be delivered, instead of truncating output', async () => {
    const result = await krun(['fn', 'run', 'krun.test/fn/echo'], {
      input: RESOURCE_LIST,
      env: { KUBECONFIG: world.kubeconfig },
    });
    assert.equal(result.status, 125);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /speaks v4\.channel\.k8s\.io for attach, which cannot deliver the end of stdin/);
    assert.match(result.stderr, /Kubernetes 1\.30 or later/);
    assert.deepEqual(world.front.sessions, ['v4.channel.k8s.io']);
    assert.deepEqual(await world.names('pods'), []);
  });
});

describe('krun fn run when the attach stream breaks', () => {
  let world: FnWorld;
  before(async () => {
    world = await fnWorld({ breakStreams: true });
  });
  after(() => world?.stop());

  test('a session cut without the final status is an error (125), not a silently short result', async () => {
    const result = await krun(['fn', 'run', 'krun.test/fn/echo'], {
      input: RESOURCE_LIST,
      env: { KUBECONFIG: world.kubeconfig },
    });
    assert.equal(result.status, 125);
    assert.match(result.stderr, /the stream ended without the server's final status; output may be incomplete/);
    assert.deepEqual(await world.names('pods'), []);
  });
});
