// `krun setup-namespace` against the real kube-apiserver and the Google Cloud emulator, run as the built CLI without a
// terminal: what it creates, that a second run changes nothing, that dry runs change nothing, and the real proof —
// `krun run`, authenticated as the namespace's Google identity, can do all it needs there and nothing elsewhere.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { krun } from '../support/cli.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { statusOf } from '../support/kube.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';

const PROJECT = 'setup-proj';
const OPERATOR = '222233334444-compute@developer.gserviceaccount.com';
const { plane, kube, gcp, work } = await gcpTestbed('setup-ns', {
  projectId: PROJECT,
  projectNumber: '222233334444',
  serviceAccount: OPERATOR,
});
let n = 0;
/** A namespace set up before the tests: the shared istio-system Role exists, and its Secrets are another's. */
const first = freshNamespace();

before(async () => {
  // The operator running setup-namespace may create service accounts and change the project's policy.
  gcp.state.grant(`projects/${PROJECT}`, 'roles/iam.serviceAccountAdmin', OPERATOR);
  gcp.state.grant(`projects/${PROJECT}`, 'roles/resourcemanager.projectIamAdmin', OPERATOR);
  const { env } = await operatorEnv();
  const r = await krun(['setup-namespace', first, '--project', PROJECT, '--yes'], { cleanEnv: env });
  assert.equal(r.status, 0, r.stderr);
  await kube.post(`/api/v1/namespaces/${first}/secrets`, { metadata: { name: 'db' }, stringData: { user: 'carol' } });
});

/** A namespace name nobody has used, short enough for its Google service account id. */
function freshNamespace(): string {
  return `sn-${randomBytes(4).toString('hex')}`;
}

/** The operator's environment: the admin kubeconfig, and the emulator as Google Cloud. */
async function operatorEnv(extra: Record<string, string> = {}) {
  const dir = join(work, `case-${++n}`);
  await mkdir(join(dir, 'home'), { recursive: true });
  return {
    dir,
    env: {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'),
      KUBECONFIG: writeKubeconfig(join(dir, 'admin.kubeconfig'), plane.access),
      ...gcp.env(),
      ...extra,
    },
  };
}

function expectedLines(ns: string, verbs: { google: string; grant: string; kube: string }, suffix = ''): string {
  const email = `k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`;
  return [
    `serviceaccount.iam.googleapis.com/${email} ${verbs.google}`,
    `projects/${PROJECT} roles/container.clusterViewer serviceAccount:${email} ${verbs.grant}`,
    `namespace/${ns} ${verbs.kube}`,
    `serviceaccount/default ${verbs.kube}`,
    `role.rbac.authorization.k8s.io/krun-launcher ${verbs.kube}`,
    `rolebinding.rbac.authorization.k8s.io/krun-launcher ${verbs.kube}`,
    `role.rbac.authorization.k8s.io/krun-mesh-env-reader ${verbs.kube === 'created' ? 'unchanged' : verbs.kube}`,
    `rolebinding.rbac.authorization.k8s.io/krun-mesh-env-reader-${ns} ${verbs.kube}`,
  ]
    .map((l) => `${l}${suffix}\n`)
    .join('');
}

function bindingMembers(role: string): string[] {
  return gcp.state.getPolicy(`projects/${PROJECT}`).bindings.find((b) => b.role === role)?.members ?? [];
}

async function exists(path: string): Promise<boolean> {
  return (await statusOf(kube.get(path))) === 200;
}

describe('krun setup-namespace', () => {
  test('creates the identity, its grant and the RBAC; a second run changes nothing; the launcher can do its job', async () => {
    // Given an operator (the shared istio-system Role was created by an earlier namespace)
    const { env } = await operatorEnv();
    const ns = freshNamespace();
    const email = `k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`;

    // When it sets up a new namespace
    const r = await krun(['setup-namespace', ns, '--project', PROJECT, '--yes'], { cleanEnv: env });

    // Then every object and IAM binding is created, and reported on stdout
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expectedLines(ns, { google: 'created', grant: 'granted', kube: 'created' }));
    assert.equal(gcp.state.serviceAccount(email)?.displayName, `krun workloads in namespace ${ns}`);
    assert.ok(bindingMembers('roles/container.clusterViewer').includes(`serviceAccount:${email}`));
    const role = await kube.get<{ rules: unknown }>(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/krun-launcher`,
    );
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['default'], verbs: ['create'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
    ]);
    const binding = await kube.get<{ subjects: unknown }>(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/istio-system/rolebindings/krun-mesh-env-reader-${ns}`,
    );
    assert.deepEqual(binding.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: email }]);
    // and the progress went to stderr as a plain task log
    assert.equal(
      r.stderr,
      [
        `[STARTED] Reading Google service account ${email}`,
        `[COMPLETED] serviceaccount.iam.googleapis.com/${email} not found`,
        `[STARTED] Reading the IAM policy of project ${PROJECT}`,
        `[COMPLETED] projects/${PROJECT} IAM policy read: 1 of 1 grants missing`,
        `[STARTED] Creating Google service account ${email}`,
        `[COMPLETED] serviceaccount.iam.googleapis.com/${email} created`,
        `[STARTED] Granting IAM roles on project ${PROJECT}`,
        `[COMPLETED] projects/${PROJECT} IAM policy updated (1 granted)`,
        `[STARTED] Applying namespace/${ns}`,
        `[COMPLETED] namespace/${ns} created`,
        '[STARTED] Applying serviceaccount/default',
        '[COMPLETED] serviceaccount/default created',
        '[STARTED] Applying role.rbac.authorization.k8s.io/krun-launcher',
        '[COMPLETED] role.rbac.authorization.k8s.io/krun-launcher created',
        '[STARTED] Applying rolebinding.rbac.authorization.k8s.io/krun-launcher',
        '[COMPLETED] rolebinding.rbac.authorization.k8s.io/krun-launcher created',
        '[STARTED] Applying role.rbac.authorization.k8s.io/krun-mesh-env-reader',
        '[COMPLETED] role.rbac.authorization.k8s.io/krun-mesh-env-reader unchanged',
        `[STARTED] Applying rolebinding.rbac.authorization.k8s.io/krun-mesh-env-reader-${ns}`,
        `[COMPLETED] rolebinding.rbac.authorization.k8s.io/krun-mesh-env-reader-${ns} created`,
        '',
      ].join('\n'),
    );

    // When it runs again, without --yes (nothing to confirm)
    const again = await krun(['setup-namespace', ns, '--project', PROJECT], { cleanEnv: env });
    // Then nothing changes, and it says so
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout, expectedLines(ns, { google: 'unchanged', grant: 'unchanged', kube: 'unchanged' }));
    assert.deepEqual(
      bindingMembers('roles/container.clusterViewer').filter((m) => m === `serviceAccount:${email}`),
      [`serviceAccount:${email}`],
    );

    // Given a workload's Secret and ConfigMap, and a kubeconfig holding the namespace identity's Google token
    await kube.post(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: 'db' }, stringData: { user: 'alice' } });
    await kube.post(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'conf' }, data: { mode: 'fast' } });
    const { token } = gcp.state.accessToken(email);
    const { dir } = await operatorEnv();
    const launcher = {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'),
      MESH_BASE_DIR: dir,
      PORT_http: '-',
      KRUN_HBONE_PORT: '-',
      KUBECONFIG: writeKubeconfig(join(dir, 'identity.kubeconfig'), plane.access, ns, token),
      KRUN_MOUNTS: 'secret:db:/etc/db,configmap:conf:/etc/conf',
    };
    // When krun run starts as that identity
    const script = `cat "$KRUN_SERVICE_ACCOUNT_DIR/token" > ${dir}/token`;
    const run = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: launcher });
    // Then it gets the ServiceAccount's token, the Secret and the ConfigMap
    assert.equal(run.status, 0, run.stderr);
    const saToken = await readFile(join(dir, 'token'), 'utf8');
    assert.equal((await kube.reviewToken(saToken, [])).user?.username, `system:serviceaccount:${ns}:default`);
    assert.equal(await readFile(join(dir, 'etc/db/user'), 'utf8'), 'alice');
    assert.equal(await readFile(join(dir, 'etc/conf/mode'), 'utf8'), 'fast');
    assert.doesNotMatch(run.stderr, /can't read istio-system\/mesh-env/);
    // and the identity may read mesh-env, but not other namespaces' Secrets, nor list, nor tokens of other accounts
    const identity = kube.as(token);
    assert.notEqual(await statusOf(identity.get('/api/v1/namespaces/istio-system/configmaps/mesh-env')), 403);
    assert.equal(await statusOf(identity.get(`/api/v1/namespaces/${first}/secrets/db`)), 403);
    assert.equal(await statusOf(identity.get(`/api/v1/namespaces/${ns}/secrets`)), 403);
    assert.equal(await statusOf(identity.get('/api/v1/namespaces/istio-system/configmaps/istio-ca-root-cert')), 403);
    await kube.createServiceAccount(ns, 'other');
    assert.equal(await statusOf(identity.requestToken(ns, 'other', ['x'])), 403);
  });

  test('--dry-run=client prints the objects and changes nothing, with no credentials at all', async () => {
    // Given a namespace that doesn't exist, and no kubeconfig or Google credentials
    const ns = freshNamespace();
    const { env } = await operatorEnv({ KUBECONFIG: join(work, 'missing.kubeconfig') });
    const policy = gcp.state.getPolicy(`projects/${PROJECT}`);
    // When
    const r = await krun(['setup-namespace', ns, '--project', PROJECT, '--dry-run=client', '-o', 'json'], {
      cleanEnv: { PATH: env.PATH, HOME: env.HOME, KUBECONFIG: env.KUBECONFIG },
    });
    // Then the objects themselves are printed, as a List kubectl applies
    assert.equal(r.status, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { kind: string; items: { kind: string; metadata: { name: string } }[] };
    assert.equal(list.kind, 'List');
    assert.deepEqual(
      list.items.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        `Namespace/${ns}`,
        'ServiceAccount/default',
        'Role/krun-launcher',
        'RoleBinding/krun-launcher',
        'Role/krun-mesh-env-reader',
        `RoleBinding/krun-mesh-env-reader-${ns}`,
      ],
    );
    // and the IAM changes are in the plan on stderr
    assert.match(
      r.stderr,
      new RegExp(
        `\\[COMPLETED\\] projects/${PROJECT} roles/container.clusterViewer serviceAccount:k8s-${ns}@${PROJECT}.iam.gserviceaccount.com configured \\(dry run\\)\\n`,
      ),
    );
    // and nothing changed
    assert.equal(await exists(`/api/v1/namespaces/${ns}`), false);
    assert.equal(gcp.state.serviceAccount(`k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`), undefined);
    assert.deepEqual(gcp.state.getPolicy(`projects/${PROJECT}`), policy);
  });

  test('--dry-run=server says what would be created, validated by the servers, and changes nothing', async () => {
    // Given
    const ns = freshNamespace();
    const { env } = await operatorEnv();
    const policy = gcp.state.getPolicy(`projects/${PROJECT}`);
    // When (no --yes: a dry run changes no IAM)
    const r = await krun(['setup-namespace', ns, '--project', PROJECT, '--dry-run=server'], { cleanEnv: env });
    // Then
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      expectedLines(ns, { google: 'created', grant: 'granted', kube: 'created' }, ' (server dry run)'),
    );
    assert.equal(await exists(`/api/v1/namespaces/${ns}`), false);
    assert.equal(
      await exists(
        `/apis/rbac.authorization.k8s.io/v1/namespaces/istio-system/rolebindings/krun-mesh-env-reader-${ns}`,
      ),
      false,
    );
    assert.equal(gcp.state.serviceAccount(`k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`), undefined);
    assert.deepEqual(gcp.state.getPolicy(`projects/${PROJECT}`), policy);
  });

  test('without a terminal, IAM changes need --yes: it stops before changing anything', async () => {
    // Given
    const ns = freshNamespace();
    const { env } = await operatorEnv();
    // When
    const r = await krun(['setup-namespace', ns, '--project', PROJECT], { cleanEnv: env });
    // Then
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      new RegExp(
        `error: setup-namespace would change IAM in project ${PROJECT} \\(create Google service account k8s-${ns}@${PROJECT}\\.iam\\.gserviceaccount\\.com; grant roles/container\\.clusterViewer on projects/${PROJECT} to serviceAccount:k8s-${ns}@${PROJECT}\\.iam\\.gserviceaccount\\.com\\): pass --yes to allow it, or --dry-run to see every change`,
      ),
    );
    assert.equal(await exists(`/api/v1/namespaces/${ns}`), false);
    assert.equal(gcp.state.serviceAccount(`k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`), undefined);
    // and a missing argument names what to pass
    const bare = await krun(['setup-namespace', '--project', PROJECT], { cleanEnv: env });
    assert.equal(bare.status, 2);
    assert.match(bare.stderr, /error: namespace is required in a non-interactive run: pass the NAMESPACE argument/);
  });

  test('--invoker grants roles/run.invoker to operators; a caller without IAM rights is told which role', async () => {
    // Given
    const ns = freshNamespace();
    const { env } = await operatorEnv();
    // When
    const r = await krun(
      ['setup-namespace', ns, '--project', PROJECT, '--yes', '--invoker', 'alice@example.com,bob@example.com'],
      { cleanEnv: env },
    );
    // Then
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^projects/${PROJECT} roles/run.invoker user:alice@example.com granted$`, 'm'));
    assert.match(r.stdout, new RegExp(`^projects/${PROJECT} roles/run.invoker user:bob@example.com granted$`, 'm'));
    assert.ok(bindingMembers('roles/run.invoker').includes('user:alice@example.com'));

    // Given a caller who may not create service accounts
    gcp.metadata.serviceAccount = `${'nobody'}@${PROJECT}.iam.gserviceaccount.com`;
    gcp.state.addServiceAccount({ accountId: 'nobody' });
    try {
      const denied = await krun(['setup-namespace', freshNamespace(), '--project', PROJECT, '--yes'], {
        cleanEnv: env,
      });
      // Then it fails naming the permission and the fix
      assert.equal(denied.status, 1);
      assert.match(denied.stderr, /error: forbidden: nobody@setup-proj\.iam\.gserviceaccount\.com may not get/);
      assert.match(
        denied.stderr,
        /Try:\n {2}gcloud projects add-iam-policy-binding setup-proj --member serviceAccount:nobody@setup-proj\.iam\.gserviceaccount\.com --role roles\/iam\.serviceAccountViewer/,
      );
    } finally {
      gcp.metadata.serviceAccount = OPERATOR;
    }
  });
});
