// `krun register` against the real kube-apiserver (with Istio's CRDs) and the Google Cloud emulator, run as the
// built CLI without a terminal: the objects it creates from the Admin API's URL, that a second run changes nothing,
// that dry runs change nothing, that a changed URL prunes the old ServiceEntry, and that --unregister deletes exactly
// what it created. The gate's address is given here (--gate-address); reading it from the cluster is tested with
// setup-cluster (test/setup/cluster.test.ts), which owns the cluster-wide gate objects.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { krun } from '../support/cli.ts';
import { gcpTestbed } from '../support/gcp/testbed.ts';
import { statusOf } from '../support/kube.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';

const PROJECT = 'register-proj';
const REGION = 'us-central1';
const OPERATOR = '444455556666-compute@developer.gserviceaccount.com';
const { plane, kube, gcp, work } = await gcpTestbed('register', {
  projectId: PROJECT,
  projectNumber: '444455556666',
  serviceAccount: OPERATOR,
});
const GATE = '10.20.30.40';
let url = '';
let prefix = '';

before(() => {
  gcp.state.grant(`projects/${PROJECT}`, 'roles/run.viewer', OPERATOR);
  const service = gcp.state.addRunService({ name: 'fortio', http2: true });
  url = gcp.state.runServiceUrls(service)[0] ?? '';
  prefix = new URL(url).hostname.split('.')[0] ?? '';
});

async function operatorEnv(namespace?: string) {
  const dir = await mkdtemp(join(work, 'case-'));
  return {
    PATH: process.env.PATH,
    HOME: dir,
    KUBECONFIG: writeKubeconfig(join(dir, 'admin.kubeconfig'), plane.access, namespace),
    ...gcp.env(),
  };
}

const NET = '/apis/networking.istio.io/v1/namespaces';

function lines(verb: string, suffix = ''): string {
  return [
    `workloadentry.networking.istio.io/fortio-gate ${verb}`,
    `service/fortio ${verb}`,
    `destinationrule.networking.istio.io/fortio ${verb}`,
    `serviceentry.networking.istio.io/${prefix} ${verb}`,
    `destinationrule.networking.istio.io/${prefix} ${verb}`,
  ]
    .map((l) => `${l}${suffix}\n`)
    .join('');
}

async function exists(path: string): Promise<boolean> {
  return (await statusOf(kube.get(path))) === 200;
}

describe('krun register', () => {
  test('creates the objects from the Cloud Run URL; a second run changes nothing; --unregister removes exactly them', async () => {
    // Given a namespace (from the kubeconfig context), and an unrelated Service there
    const ns = await kube.createNamespace('reg');
    await kube.post(`/api/v1/namespaces/${ns}/services`, {
      metadata: { name: 'other', labels: { 'app.kubernetes.io/managed-by': 'krun' } },
      spec: { ports: [{ port: 80 }] },
    });
    const env = await operatorEnv(ns);
    const args = ['register', 'fortio', '--project', PROJECT, '--region', REGION, '--gate-address', GATE];

    // When
    const r = await krun(args, { cleanEnv: env });

    // Then every object is created and reported
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, lines('created'));
    assert.equal(
      r.stderr,
      [
        `[STARTED] Looking up Cloud Run service fortio in ${REGION}`,
        `[COMPLETED] run.googleapis.com/projects/${PROJECT}/locations/${REGION}/services/fortio ${url}`,
        '[STARTED] Checking that no one else owns these names',
        '[COMPLETED] no other owner of 5 names',
        '[STARTED] Applying workloadentry.networking.istio.io/fortio-gate',
        '[COMPLETED] workloadentry.networking.istio.io/fortio-gate created',
        '[STARTED] Applying service/fortio',
        '[COMPLETED] service/fortio created',
        '[STARTED] Applying destinationrule.networking.istio.io/fortio',
        '[COMPLETED] destinationrule.networking.istio.io/fortio created',
        `[STARTED] Applying serviceentry.networking.istio.io/${prefix}`,
        `[COMPLETED] serviceentry.networking.istio.io/${prefix} created`,
        `[STARTED] Applying destinationrule.networking.istio.io/${prefix}`,
        `[COMPLETED] destinationrule.networking.istio.io/${prefix} created`,
        '[STARTED] Finding objects an earlier registration of fortio left',
        '[COMPLETED] 0 left from an earlier registration',
        '',
      ].join('\n'),
    );
    // and the Service names the Cloud Run URL (what the gate routes by), the WorkloadEntry points at the gate
    const service = await kube.get<{
      metadata: { annotations: Record<string, string>; labels: Record<string, string> };
    }>(`/api/v1/namespaces/${ns}/services/fortio`);
    assert.equal(service.metadata.annotations['krun.dev/cloud-run-url'], url);
    assert.equal(service.metadata.labels['krun.dev/registration'], 'fortio');
    const entry = await kube.get<{ spec: { address: string; ports: Record<string, number> } }>(
      `${NET}/${ns}/workloadentries/fortio-gate`,
    );
    assert.deepEqual(entry.spec.ports, { http: 15442, 'http-8080': 15442, grpc: 15442 });
    assert.equal(entry.spec.address, GATE);
    const se = await kube.get<{ spec: { hosts: string[] } }>(`${NET}/${ns}/serviceentries/${prefix}`);
    assert.deepEqual(se.spec.hosts, [`${prefix}.${ns}.svc.cluster.local`]);

    // When it runs again
    const again = await krun(args, { cleanEnv: env });
    // Then nothing changes
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout, lines('unchanged'));

    // When it is unregistered
    const gone = await krun(['register', 'fortio', '--unregister'], { cleanEnv: env });
    // Then exactly its objects are deleted, and the unrelated Service stays
    assert.equal(gone.status, 0, gone.stderr);
    assert.deepEqual(
      gone.stdout.split('\n').filter(Boolean).sort(),
      lines('deleted').split('\n').filter(Boolean).sort(),
    );
    assert.equal(await exists(`/api/v1/namespaces/${ns}/services/fortio`), false);
    assert.equal(await exists(`${NET}/${ns}/workloadentries/fortio-gate`), false);
    assert.equal(await exists(`${NET}/${ns}/serviceentries/${prefix}`), false);
    assert.equal(await exists(`/api/v1/namespaces/${ns}/services/other`), true);
    // and a second unregister has nothing to do
    const none = await krun(['register', 'fortio', '--unregister'], { cleanEnv: env });
    assert.equal(none.status, 0, none.stderr);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, new RegExp(`\\[COMPLETED\\] nothing registered as fortio in namespace ${ns}\\n`));
  });

  test("a Service of the same name that isn't krun's is refused, not taken over, and nothing is created", async () => {
    // Given the user's own Service named like the Cloud Run service
    const ns = await kube.createNamespace('reg');
    const mine = { metadata: { name: 'fortio', labels: { app: 'fortio' } }, spec: { ports: [{ port: 9090 }] } };
    await kube.post(`/api/v1/namespaces/${ns}/services`, mine);
    const env = await operatorEnv(ns);

    // When
    const r = await krun(['register', 'fortio', '--url', url, '--gate-address', GATE], { cleanEnv: env });

    // Then it fails naming the Service and what to do, and the Service is untouched
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`error: service/fortio in namespace ${ns} already exist and are not krun's registration of fortio`),
    );
    assert.match(r.stderr, new RegExp(`Try:\n.*kubectl -n ${ns} get service/fortio -o yaml`));
    const live = await kube.get<{ metadata: { labels: Record<string, string> }; spec: { ports: { port: number }[] } }>(
      `/api/v1/namespaces/${ns}/services/fortio`,
    );
    assert.deepEqual(live.metadata.labels, { app: 'fortio' });
    assert.deepEqual(
      live.spec.ports.map((p) => p.port),
      [9090],
    );
    assert.equal(await exists(`${NET}/${ns}/workloadentries/fortio-gate`), false);
    // and --unregister has nothing of krun's to delete
    const gone = await krun(['register', 'fortio', '--unregister'], { cleanEnv: env });
    assert.equal(gone.status, 0, gone.stderr);
    assert.equal(await exists(`/api/v1/namespaces/${ns}/services/fortio`), true);
  });

  test('a changed URL re-points the Service and prunes the ServiceEntry of the old one', async () => {
    // Given a registration made with an older URL
    const ns = await kube.createNamespace('reg');
    const env = await operatorEnv();
    const old = await krun(
      ['register', 'fortio', '-n', ns, '--url', 'https://fortio-old0000000-uc.a.run.app', '--gate-address', GATE],
      { cleanEnv: env },
    );
    assert.equal(old.status, 0, old.stderr);
    // When it is registered again with the Admin API's URL
    const r = await krun(
      ['register', 'fortio', '-n', ns, '--project', PROJECT, '--region', REGION, '--gate-address', GATE],
      { cleanEnv: env },
    );
    // Then
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        'workloadentry.networking.istio.io/fortio-gate unchanged',
        'service/fortio updated',
        'destinationrule.networking.istio.io/fortio unchanged',
        `serviceentry.networking.istio.io/${prefix} created`,
        `destinationrule.networking.istio.io/${prefix} created`,
        'serviceentry.networking.istio.io/fortio-old0000000-uc deleted',
        'destinationrule.networking.istio.io/fortio-old0000000-uc deleted',
        '',
      ].join('\n'),
    );
    assert.equal(await exists(`${NET}/${ns}/serviceentries/fortio-old0000000-uc`), false);
  });

  test('--dry-run=client prints the objects and --dry-run=server validates them; neither changes anything', async () => {
    // Given
    const ns = await kube.createNamespace('reg');
    const env = await operatorEnv();
    // When (no kubeconfig needed: the namespace and gate address are given)
    const client = await krun(
      ['register', 'fortio', '-n', ns, '--project', PROJECT, '--region', REGION, '--gate-address', GATE],
      { cleanEnv: { ...env, KRUN_DRY_RUN: 'client', KRUN_OUTPUT: 'yaml', KUBECONFIG: join(work, 'missing') } },
    );
    // Then the objects are printed as a List kubectl applies
    assert.equal(client.status, 0, client.stderr);
    assert.match(client.stdout, /^apiVersion: v1\nkind: List\nitems:\n/);
    assert.match(client.stdout, new RegExp(`krun.dev/cloud-run-url: ${url.replaceAll('.', '\\.')}\\n`));
    assert.match(client.stdout, /address: 10\.20\.30\.40\n/);
    // When
    const server = await krun(
      ['register', 'fortio', '-n', ns, '--url', url, '--gate-address', GATE, '--dry-run=server'],
      { cleanEnv: env },
    );
    // Then
    assert.equal(server.status, 0, server.stderr);
    assert.equal(server.stdout, lines('created', ' (server dry run)'));
    assert.equal(await exists(`/api/v1/namespaces/${ns}/services/fortio`), false);
    assert.equal(await exists(`${NET}/${ns}/workloadentries/fortio-gate`), false);
  });

  test('without a terminal, a missing argument or region names the flag; an unknown service names the region', async () => {
    // Given
    const env = await operatorEnv();
    // When / Then
    const bare = await krun(['register'], { cleanEnv: env });
    assert.equal(bare.status, 2);
    assert.match(
      bare.stderr,
      /error: cloud run service is required in a non-interactive run: pass the SERVICE argument/,
    );
    const noRegion = await krun(['register', 'fortio', '--project', PROJECT, '--gate-address', GATE], {
      cleanEnv: env,
    });
    assert.equal(noRegion.status, 2);
    assert.match(noRegion.stderr, /error: cloud run region is required in a non-interactive run: pass --region/);
    const unknown = await krun(
      ['register', 'nope', '--project', PROJECT, '--region', 'europe-west1', '--gate-address', GATE],
      { cleanEnv: env },
    );
    assert.equal(unknown.status, 1);
    assert.match(
      unknown.stderr,
      new RegExp(`error: Cloud Run service nope not found in region europe-west1 of project ${PROJECT}`),
    );
    const invalid = await krun(['register', 'Fortio_1'], { cleanEnv: env });
    assert.equal(invalid.status, 2);
    assert.match(invalid.stderr, /"Fortio_1" is not a valid Cloud Run service name/);
  });
});
