// `krun fn rbac`: the Role it prints is exactly enough. A ServiceAccount without it cannot run a function (clear
// message and the command that fixes it); after `krun fn rbac --apply`, the same account's token runs one with a
// mount, the deny-all policy and the log read (every rule used), all checked by the real apiserver's RBAC
// (the attach front asks the apiserver too: SelfSubjectAccessReview with the caller's token).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { krun } from '../support/cli.ts';
import { type FnWorld, fnWorld } from '../support/fn/world.ts';

const INPUT = 'apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n';

describe('krun fn rbac', () => {
  let world: FnWorld;
  let ciKubeconfig: string;
  before(async () => {
    world = await fnWorld();
    await world.kube.createServiceAccount(world.namespace, 'ci');
    const { token } = await world.kube.requestToken(world.namespace, 'ci', [], 3600);
    ciKubeconfig = world.kubeconfigFor(token, 'ci');
  });
  after(() => world?.stop());

  test('prints a Role with exactly the verbs krun uses, bound to the ServiceAccount', async () => {
    const result = await krun(['fn', 'rbac', '-n', world.namespace, '--service-account', 'ci']);
    assert.equal(result.status, 0, result.stderr);
    const [role, binding] = parseAllDocuments(result.stdout).flatMap((d) => {
      const v = d.toJS() as { kind: string; items?: unknown[] };
      return v.kind === 'List' ? (v.items ?? []) : [v];
    }) as Record<string, unknown>[];
    assert.deepEqual(role?.rules, [
      { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'watch', 'delete'] },
      { apiGroups: [''], resources: ['pods/attach'], verbs: ['get', 'create'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'delete'] },
      { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['create', 'delete'] },
    ]);
    assert.deepEqual(binding?.subjects, [{ kind: 'ServiceAccount', name: 'ci', namespace: world.namespace }]);
    // kubectl's NAMESPACE:NAME, nothing more: a third part is an error, not silently dropped
    for (const bad of ['argocd:repo:server', ':ci', 'argocd:']) {
      const refused = await krun(['fn', 'rbac', '-n', world.namespace, '--service-account', bad]);
      assert.equal(refused.status, 2, bad);
      assert.match(refused.stderr, /expected NAMESPACE:NAME or NAME/);
    }
  });

  test('without the grant, fn run fails with the missing permission and the fix', async () => {
    const result = await krun(['fn', 'run', 'krun.test/fn/echo'], { input: INPUT, env: { KUBECONFIG: ciKubeconfig } });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^error: forbidden: krun may not create networkpolicies in namespace fn-/m);
    assert.match(
      result.stderr,
      new RegExp(`krun fn rbac -n ${world.namespace} --service-account NAMESPACE:NAME --apply`),
    );
    assert.deepEqual(await world.names('pods'), []);
  });

  test('after fn rbac --apply, the ServiceAccount runs a function with a mount and no network', async () => {
    const applied = await krun(
      ['fn', 'rbac', '-n', world.namespace, '--service-account', `${world.namespace}:ci`, '--apply'],
      { env: { KUBECONFIG: world.kubeconfig } },
    );
    assert.equal(applied.status, 0, applied.stderr);
    assert.equal(
      applied.stdout,
      'role.rbac.authorization.k8s.io/krun-fn created\nrolebinding.rbac.authorization.k8s.io/krun-fn created\n',
    );
    // and a second run (and a client dry run) says so, as kubectl apply does
    const args = ['fn', 'rbac', '-n', world.namespace, '--service-account', `${world.namespace}:ci`, '--apply'];
    const again = await krun(args, { env: { KUBECONFIG: world.kubeconfig } });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(
      again.stdout,
      'role.rbac.authorization.k8s.io/krun-fn unchanged\nrolebinding.rbac.authorization.k8s.io/krun-fn unchanged\n',
    );
    const planned = await krun([...args, '--dry-run=client'], { env: { KUBECONFIG: '/nonexistent' } });
    assert.equal(planned.status, 0, planned.stderr);
    assert.equal(
      planned.stdout,
      'role.rbac.authorization.k8s.io/krun-fn configured (dry run)\nrolebinding.rbac.authorization.k8s.io/krun-fn configured (dry run)\n',
    );
    const file = join(world.dir, 'labels.yaml');
    writeFileSync(file, 'a: b\n');
    const result = await krun(
      ['fn', 'run', 'krun.test/fn/stderr-first', `--mount=type=bind,source=${file},target=/l.yaml,readonly`],
      { input: INPUT, env: { KUBECONFIG: ciKubeconfig } },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, INPUT);
    assert.match(result.stderr, /^stderr-first: starting up$/m);
    assert.deepEqual(await world.names('pods'), []);
    assert.deepEqual(await world.names('configmaps'), []);
  });
});
