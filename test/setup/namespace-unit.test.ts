// The pure parts of setup-namespace (object builders, IAM policy edits), the etag retry, and the prompts, with
// scripted answers: no cluster and no Google Cloud needed.
import assert from 'node:assert/strict';
import type { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type { GoogleAuth } from 'google-auth-library';
import { NonInteractiveError, UsageError } from '../../src/lib/errors.ts';
import { ensureProjectGrants, withMembers } from '../../src/lib/gcp/iam-admin.ts';
import { googleAccountId } from '../../src/lib/setup/names.ts';
import { googleGrants, setupNamespace } from '../../src/lib/setup/namespace.ts';
import { namespaceObjects } from '../../src/lib/setup/namespace-objects.ts';
import { inquirerPrompter, type Prompter } from '../../src/lib/ui/prompt.ts';
import { testContext } from '../support/context.ts';

const labels = { 'app.kubernetes.io/managed-by': 'krun' };
const user = { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'k8s-fortio@p1.iam.gserviceaccount.com' };

/** A prompter that answers from a script and fails on any question it wasn't told to expect. */
function scripted(script: [kind: 'input' | 'confirm', question: string, answer: string | boolean][]): Prompter & {
  asked: string[];
} {
  const asked: string[] = [];
  const next = (kind: string, question: string) => {
    const step = script.shift();
    asked.push(question);
    assert.ok(step, `unexpected question: ${question}`);
    assert.deepEqual([kind, question], [step[0], step[1]]);
    return step[2];
  };
  return {
    asked,
    input: async (q) => String(next('input', q)),
    confirm: async (q) => Boolean(next('confirm', q)),
  };
}

/** A GoogleAuth double answering IAM and Resource Manager calls from `answer`. */
function fakeAuth(answer: (method: string, url: string, data: unknown) => unknown): GoogleAuth {
  return {
    request: async ({ url, method, data }: { url: string; method: string; data?: unknown }) => ({
      data: answer(method, url, data),
    }),
    getCredentials: async () => ({ client_email: 'operator@p1.iam.gserviceaccount.com' }),
  } as unknown as GoogleAuth;
}

function googleError(status: number, code: string): Error {
  return Object.assign(new Error(code), { response: { status, data: { error: { message: code, status: code } } } });
}

describe('setup-namespace builders', () => {
  test('the objects are exactly the launcher’s least privilege', () => {
    // Given / When
    const objects = namespaceObjects({
      namespace: 'fortio',
      identity: user.name,
      serviceAccount: 'app',
      secrets: ['tls', 'db'],
    });
    // Then
    assert.deepEqual(objects, [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fortio', labels } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: 'fortio', labels } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'krun-launcher', namespace: 'fortio', labels },
        rules: [
          { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['app'], verbs: ['create'] },
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['db', 'tls'], verbs: ['get'] },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'krun-launcher', namespace: 'fortio', labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'krun-launcher' },
        subjects: [user],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'krun-mesh-env-reader', namespace: 'istio-system', labels },
        rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['mesh-env'], verbs: ['get'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'krun-mesh-env-reader-fortio', namespace: 'istio-system', labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'krun-mesh-env-reader' },
        subjects: [user],
      },
    ]);
  });

  test('the IAM grants: cluster viewer for the identity, run.invoker for operators (deduplicated, sorted)', () => {
    assert.deepEqual(googleGrants('p1', user.name, ['bob@example.com', 'group:ops@example.com', 'bob@example.com']), [
      { resource: 'projects/p1', role: 'roles/container.clusterViewer', member: `serviceAccount:${user.name}` },
      { resource: 'projects/p1', role: 'roles/run.invoker', member: 'group:ops@example.com' },
      { resource: 'projects/p1', role: 'roles/run.invoker', member: 'user:bob@example.com' },
    ]);
  });

  test('withMembers adds to the unconditional binding and keeps everything else', () => {
    const condition = { title: 'weekdays', expression: 'true' };
    const policy = {
      etag: 'E1',
      bindings: [
        { role: 'roles/viewer', members: ['user:a@x'] },
        { role: 'roles/container.clusterViewer', members: ['user:c@x'], condition },
      ],
    };
    assert.deepEqual(
      withMembers(policy, [
        { role: 'roles/viewer', member: 'user:b@x' },
        { role: 'roles/viewer', member: 'user:a@x' },
        { role: 'roles/container.clusterViewer', member: 'user:d@x' },
      ]),
      {
        etag: 'E1',
        bindings: [
          { role: 'roles/viewer', members: ['user:a@x', 'user:b@x'] },
          { role: 'roles/container.clusterViewer', members: ['user:c@x'], condition },
          { role: 'roles/container.clusterViewer', members: ['user:d@x'] },
        ],
      },
    );
  });

  test('namespaces too long for a Google service account id are refused before anything is sent', () => {
    assert.equal(googleAccountId('fortio'), 'k8s-fortio');
    assert.throws(() => googleAccountId('a-namespace-name-that-is-long'), UsageError);
  });
});

describe('project IAM read-modify-write', () => {
  test('a stale etag (409 ABORTED) starts the read-modify-write over', async () => {
    // Given a policy that another writer changes between the first read and write
    let etag = 'E1';
    const writes: unknown[] = [];
    const auth = fakeAuth((_method, url, data) => {
      if (url.endsWith(':getIamPolicy')) return { etag, bindings: [] };
      writes.push(data);
      if (writes.length === 1) {
        etag = 'E2';
        throw googleError(409, 'ABORTED');
      }
      return {};
    });
    const grant = { resource: 'projects/p1', role: 'roles/container.clusterViewer', member: 'serviceAccount:x' };
    // When
    const granted = await ensureProjectGrants(auth, 'p1', [grant], {}, { apply: true });
    // Then the second write carries the fresh etag
    assert.deepEqual(granted, [grant]);
    assert.deepEqual(
      writes.map((w) => (w as { policy: { etag: string } }).policy.etag),
      ['E1', 'E2'],
    );
  });
});

describe('setup-namespace prompts', () => {
  test('on a terminal, a missing namespace and project are asked for', async () => {
    // Given an interactive run without arguments
    const ctx = { ...testContext(), interactive: true };
    const prompter = scripted([
      ['input', 'Namespace', 'fortio'],
      ['input', 'Google Cloud project', 'p1'],
    ]);
    // When
    const result = await setupNamespace({ dryRun: 'client', yes: false }, ctx, { prompter });
    // Then
    assert.deepEqual([result.namespace, result.project, result.identity], ['fortio', 'p1', user.name]);
    assert.deepEqual(prompter.asked, ['Namespace', 'Google Cloud project']);
  });

  test('IAM changes are confirmed first; declining changes nothing', async () => {
    // Given an identity that doesn't exist yet
    const ctx = { ...testContext(), interactive: true };
    const calls: string[] = [];
    const auth = fakeAuth((method, url) => {
      calls.push(`${method} ${new URL(url).pathname}`);
      if (url.includes('/serviceAccounts/')) throw googleError(404, 'NOT_FOUND');
      return { etag: 'E1', bindings: [] };
    });
    const prompter = scripted([
      [
        'confirm',
        `Make these IAM changes?\n  create Google service account ${user.name}\n  grant roles/container.clusterViewer on projects/p1 to serviceAccount:${user.name}\n`,
        false,
      ],
    ]);
    const kube = async () => assert.fail('the cluster is not contacted after a refusal');
    // When
    const refused = setupNamespace({ namespace: 'fortio', project: 'p1', dryRun: 'none', yes: false }, ctx, {
      prompter,
      auth: async () => auth,
      kube,
    });
    // Then
    await assert.rejects(refused, (err: Error) => err instanceof NonInteractiveError && /declined/.test(err.message));
    assert.deepEqual(calls, [
      `GET /v1/projects/p1/serviceAccounts/${encodeURIComponent(user.name)}`,
      'POST /v1/projects/p1:getIamPolicy',
    ]);
  });

  test('inquirer reads the scripted answer from the command’s input and asks on stderr', async () => {
    // Given
    const ctx = testContext();
    const input = ctx.streams.in as PassThrough;
    // When
    const answer = inquirerPrompter(ctx).input('Namespace');
    setTimeout(() => input.write('fortio\n'), 50);
    // Then
    assert.equal(await answer, 'fortio');
    assert.match(ctx.stderr(), /Namespace/);
  });
});
