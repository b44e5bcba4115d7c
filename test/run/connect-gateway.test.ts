// A Fleet member that is not a GKE cluster, reached through the (emulated) Connect Gateway: `krun run` finds it in
// GKE Hub, writes the Pod files through the gateway as its Google identity (the Connect Agent impersonates the email,
// so RBAC for the email applies), and `krun kubeconfig` writes an entry that real kubectl uses through the gateway.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { krun } from '../support/cli.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { launcherCase } from '../support/launcher-case.ts';

const PROJECT = 'edge-proj';
const NUMBER = '135792468013';
const { plane, kube, gcp, work } = await gcpTestbed('gateway', {
  projectId: PROJECT,
  projectNumber: NUMBER,
  region: 'us-west1',
});
const GATEWAY = `${gcp.endpoints.connectgateway}/v1/projects/${NUMBER}/locations/global/gkeMemberships/edge`;

before(() => {
  // No GKE cluster in the project: only an attached (non-GKE) cluster, registered in the fleet
  gcp.state.addMembership({ name: 'edge', kube: plane.access });
});

async function workload(gatewayRole: string) {
  const ns = await kube.createNamespace('gateway');
  await kube.createServiceAccount(ns, 'default');
  const email = `k8s-${ns}@${PROJECT}.iam.gserviceaccount.com`;
  gcp.state.addServiceAccount({ accountId: `k8s-${ns}` });
  gcp.metadata.serviceAccount = email;
  for (const role of ['roles/container.clusterViewer', 'roles/gkehub.viewer', gatewayRole]) {
    gcp.state.grant(`projects/${PROJECT}`, role, email);
  }
  await kube.grant(
    ns,
    'krun',
    [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['default'], verbs: ['create'] }],
    [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: email }],
  );
  // A PATH without gke-gcloud-auth-plugin (this machine may have one)
  const { dir, env } = await launcherCase(work, { ...gcp.env(), PATH: join(work, 'no-plugin'), K_SERVICE: 'edge-app' });
  return { ns, email, dir, env };
}

describe('a Fleet member behind the Connect Gateway', () => {
  test('krun run writes the Pod files through the gateway, as its Google identity', async () => {
    const { ns, dir, env } = await workload('roles/gkehub.gatewayEditor');
    const r = await krun(['run', '--', '/bin/sh', '-c', `/bin/cat "$KRUN_SERVICE_ACCOUNT_DIR/token" > ${dir}/token`], {
      cleanEnv: env,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /"message":"selected Fleet membership","membership":"projects\/edge-proj\/locations\/global\/memberships\/edge","reason":"Fleet membership edge through the Connect Gateway"/,
    );
    assert.ok(r.stderr.includes(`"server":"${GATEWAY}"`), r.stderr);
    const token = await readFile(join(dir, 'token'), 'utf8');
    assert.equal((await kube.reviewToken(token, [])).user?.username, `system:serviceaccount:${ns}:default`);
  });

  test("without the gateway's write permission, the error names it", async () => {
    const { env } = await workload('roles/gkehub.gatewayReader');
    const r = await krun(['run', '--', '/bin/true'], { cleanEnv: env });
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /error: forbidden: krun may not create tokens for ServiceAccount .*Permission 'gkehub\.gateway\.post' denied on resource 'projects\/135792468013\/locations\/global\/memberships\/edge'/,
    );
  });

  test('krun kubeconfig names the entry like gcloud, and kubectl reaches the member through the gateway', async () => {
    const { email, dir, env } = await workload('roles/gkehub.gatewayEditor');
    const r = await krun(['kubeconfig', '--project', PROJECT], { cleanEnv: env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^current-context: connectgateway_edge-proj_edge$/m);
    assert.ok(r.stdout.includes(`server: ${GATEWAY}\n`), r.stdout);
    const file = join(dir, 'kubeconfig.yaml');
    await writeFile(file, r.stdout, { mode: 0o600 });
    // The gateway's certificate chains to the emulator's CA: Go's SSL_CERT_FILE stands in for the system roots
    const whoami = await new Promise<string>((resolve, reject) =>
      execFile(
        '/usr/bin/kubectl',
        ['--kubeconfig', file, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
        { env: { HOME: dir, SSL_CERT_FILE: gcp.frontEnd.caFile } },
        (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)),
      ),
    );
    assert.equal(whoami, email);
  });
});
