// The docker command lines kustomize v5.5 and kpt build (captured from the real tools, see
// shared reference krm-and-runtime.md §2.2 and §2.5), as the Pod krun makes of them.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { reconcile } from '../../src/lib/fn/attach.ts';
import { parseDockerRun } from '../../src/lib/fn/docker-args.ts';
import { FnRuntimeError } from '../../src/lib/fn/errors.ts';
import { buildObjects } from '../../src/lib/fn/objects.ts';

const dir = mkdtempSync(join(tmpdir(), 'krun-fn-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'app', 'data', 'nested'), { recursive: true });
writeFileSync(join(dir, 'app', 'data', 'a.yaml'), 'a: 1\n');
writeFileSync(join(dir, 'app', 'data', 'nested', 'b.bin'), Buffer.from([0xff, 0x00, 0xfe]));

// kubectl kustomize --enable-alpha-plugins --network -e EXTRA=1 --mount type=bind,src=/tmp,dst=/hosttmp app
const KUSTOMIZE = [
  'run',
  '--rm',
  '-i',
  '-a',
  'STDIN',
  '-a',
  'STDOUT',
  '-a',
  'STDERR',
  '--network',
  'host',
  '--user',
  'nobody',
  '--security-opt=no-new-privileges',
  '--mount',
  `type=bind,source=${dir}/app/data,target=/data,readonly`,
  '-e',
  'EXTRA=1',
  '-e',
  'FOO=bar',
  '-e',
  'LOG_TO_STDERR=true',
  '-e',
  'STRUCTURED_RESULTS=true',
  '-e',
  'HOME',
  'example.com/echo:v1',
];

const SETTINGS = {
  timeoutMs: 300_000,
  cpu: '1',
  memory: '512Mi',
  serviceAccount: undefined,
  helperImage: 'busybox:1.37',
};

describe('docker run as kustomize and kpt build it', () => {
  test("kustomize's command line: image, env (-e HOME from the caller), user, network, mount", () => {
    const spec = parseDockerRun(KUSTOMIZE.slice(1), { HOME: '/home/ci' }, dir);
    assert.deepEqual(spec, {
      image: 'example.com/echo:v1',
      args: [],
      entrypoint: undefined,
      workdir: undefined,
      env: [
        { name: 'EXTRA', value: '1' },
        { name: 'FOO', value: 'bar' },
        { name: 'LOG_TO_STDERR', value: 'true' },
        { name: 'STRUCTURED_RESULTS', value: 'true' },
        { name: 'HOME', value: '/home/ci' },
      ],
      denyNetwork: false,
      user: { uid: 65534, gid: 65534 },
      mounts: [{ source: `${dir}/app/data`, target: '/data', readOnly: true }],
      pull: 'IfNotPresent',
      stdin: true,
    });
    // docker semantics: `-e NAME` of an unset variable passes nothing.
    assert.deepEqual(parseDockerRun(['-e', 'HOME', 'img'], {}, dir).env, []);
  });

  test("kpt's command line: no -a flags, --pull, UID:GID, relative mounts resolved against the working directory", () => {
    const spec = parseDockerRun(
      [
        '--rm',
        '-i',
        '--network',
        'none',
        '--user',
        '1000:2000',
        '--security-opt=no-new-privileges',
        '--pull',
        'always',
        '--mount',
        'type=bind,src=app/data,dst=/data,ro',
        'gcr.io/fn:v2',
        '--flag',
      ],
      {},
      dir,
    );
    assert.equal(spec.pull, 'Always');
    assert.equal(spec.denyNetwork, true);
    assert.deepEqual(spec.user, { uid: 1000, gid: 2000 });
    assert.deepEqual(spec.mounts, [{ source: `${dir}/app/data`, target: '/data', readOnly: true }]);
    assert.deepEqual(spec.args, ['--flag']);
  });

  test('unsupported flags, options and users fail with 125, naming them', () => {
    const fails = (args: string[], message: RegExp) =>
      assert.throws(
        () => parseDockerRun(args, {}, dir),
        (err: unknown) => {
          assert.ok(err instanceof FnRuntimeError);
          assert.equal(err.exitCode, 125);
          assert.match(err.message, message);
          return true;
        },
      );
    fails(['--privileged', 'img'], /unsupported flag --privileged/);
    fails(['-v', '/a:/b', 'img'], /unsupported flag -v/);
    fails(['-it', 'img'], /unsupported flag -it/);
    fails(['--security-opt', 'seccomp=unconfined', 'img'], /unsupported --security-opt seccomp=unconfined/);
    fails(['--mount', 'type=volume,source=v,target=/v', 'img'], /only type=bind/);
    fails(['--mount', 'type=bind,source=/a,target=/b', 'img'], /writable bind mounts are not supported/);
    fails(['--user', 'root', 'img'], /numeric user/);
    fails(['--user', '0:0', 'img'], /non-root users only/);
    fails(['--network', 'container:x', 'img'], /expected none, host or bridge/);
    fails(['--rm', '-i'], /no image given/);
  });

  test('the Pod: locked down, limits, deadline, stdin once; mounts as a ConfigMap with nested and binary files', async () => {
    const spec = parseDockerRun(
      KUSTOMIZE.slice(1).map((a) => (a === 'host' ? 'none' : a)),
      {},
      dir,
    );
    const { pod, before, name } = await buildObjects(spec, SETTINGS, 'krm-fn', 'krun-fn-0123456789');
    assert.equal(name, 'krun-fn-0123456789');
    const labels = {
      'app.kubernetes.io/managed-by': 'krun',
      'app.kubernetes.io/component': 'krm-function',
      'krun.dev/fn-run': 'krun-fn-0123456789',
    };
    assert.deepEqual(before, [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'krun-fn-0123456789-mount-0', namespace: 'krm-fn', labels },
        immutable: true,
        data: { 'a.yaml': 'a: 1\n' },
        binaryData: { 'file-2': Buffer.from([0xff, 0x00, 0xfe]).toString('base64') },
      },
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'krun-fn-0123456789', namespace: 'krm-fn', labels },
        spec: {
          podSelector: { matchLabels: { 'krun.dev/fn-run': 'krun-fn-0123456789' } },
          policyTypes: ['Ingress', 'Egress'],
        },
      },
    ]);
    assert.deepEqual(pod.spec, {
      restartPolicy: 'Never',
      activeDeadlineSeconds: 300,
      terminationGracePeriodSeconds: 1,
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65534,
        runAsGroup: 65534,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'function',
          image: 'example.com/echo:v1',
          imagePullPolicy: 'IfNotPresent',
          env: [
            { name: 'EXTRA', value: '1' },
            { name: 'FOO', value: 'bar' },
            { name: 'LOG_TO_STDERR', value: 'true' },
            { name: 'STRUCTURED_RESULTS', value: 'true' },
          ],
          stdin: true,
          stdinOnce: true,
          tty: false,
          resources: { requests: { cpu: '100m', memory: '512Mi' }, limits: { cpu: '1', memory: '512Mi' } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          volumeMounts: [{ name: 'mount-0', mountPath: '/data', readOnly: true }],
        },
      ],
      volumes: [
        {
          name: 'mount-0',
          configMap: {
            name: 'krun-fn-0123456789-mount-0',
            items: [
              { key: 'a.yaml', path: 'a.yaml', mode: 0o444 },
              { key: 'file-2', path: 'nested/b.bin', mode: 0o444 },
            ],
          },
        },
      ],
    });
  });

  test('--service-account mounts that account token; otherwise none', async () => {
    const spec = parseDockerRun(['-i', 'img'], {}, dir);
    const { pod } = await buildObjects(spec, { ...SETTINGS, serviceAccount: 'fn-runner' }, 'ns');
    const podSpec = pod.spec as Record<string, unknown>;
    assert.equal(podSpec.serviceAccountName, 'fn-runner');
    assert.equal(podSpec.automountServiceAccountToken, true);
  });
});

describe('reconciling the log with the attach stream', () => {
  test('what the log has beyond the attach stream start is what was written before the attach', () => {
    const log = Buffer.from('starting\nhello world\n');
    assert.equal(reconcile(log, Buffer.from('hello world\nmore')).toString(), 'starting\n');
    assert.equal(reconcile(log, Buffer.from('hel')).toString(), 'starting\nhello world\n');
    assert.equal(reconcile(log, Buffer.from('')).toString(), 'starting\nhello world\n');
    assert.equal(reconcile(Buffer.from('x\n'), Buffer.from('x\n')).toString(), '');
  });
});
