import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseMesh } from '../../src/lib/gcp/discover.ts';
import { apiBase } from '../../src/lib/gcp/endpoints.ts';
import type { GkeCluster } from '../../src/lib/gcp/gke.ts';
import { connectGatewayServer } from '../../src/lib/gcp/gke.ts';
import { detectPlatform } from '../../src/lib/gcp/platform.ts';
import { rankClusters } from '../../src/lib/gcp/select-cluster.ts';
import { namespaceFromServiceAccount } from '../../src/lib/run/config.ts';

const cluster = (name: string, location: string, resourceLabels: Record<string, string> = {}): GkeCluster => ({
  project: 'p',
  name,
  location,
  endpoint: '10.0.0.1',
  caCertificate: '',
  resourceLabels,
});
const names = (cs: { cluster: GkeCluster }[]) => cs.map((c) => `${c.cluster.location}/${c.cluster.name}`);

describe('rankClusters', () => {
  const all = [
    cluster('apps', 'us-central1-a'),
    cluster('istio-west', 'us-west1'),
    cluster('istio-central', 'us-central1'),
    cluster('config-east', 'us-east1', { mesh_id: 'proj-1' }),
    cluster('config-central', 'us-central1-b', { 'krun-mesh': 'true' }),
    cluster('zzz', 'europe-west1'),
  ];

  test('mesh labels first, then the istio prefix, then anything; the own region first within each', () => {
    assert.deepEqual(names(rankClusters(all, { region: 'us-central1' })), [
      'us-central1-b/config-central',
      'us-east1/config-east',
      'us-central1/istio-central',
      'us-west1/istio-west',
      'us-central1-a/apps',
      'europe-west1/zzz',
    ]);
  });

  test('each candidate says why it was chosen', () => {
    const [first, second] = rankClusters(all, { region: 'us-east1' });
    assert.deepEqual(
      [first?.cluster.name, first?.reason],
      ['config-east', 'labelled krun-mesh/mesh_id, in region us-east1'],
    );
    assert.deepEqual(
      [second?.cluster.name, second?.reason],
      ['config-central', 'labelled krun-mesh/mesh_id, another region'],
    );
  });

  test('a named cluster wins, in the own region first; an unknown name lists what exists', () => {
    const twins = [cluster('c', 'us-east1'), cluster('c', 'us-central1'), cluster('d', 'us-central1')];
    assert.deepEqual(names(rankClusters(twins, { region: 'us-central1', name: 'c' })), ['us-central1/c', 'us-east1/c']);
    assert.deepEqual(names(rankClusters(twins, { name: 'c', location: 'us-east1' })), ['us-east1/c']);
    assert.throws(() => rankClusters(twins, { name: 'x' }), /no GKE cluster named x/);
  });
});

describe('discovery helpers', () => {
  test("the original's MESH forms", () => {
    assert.deepEqual(parseMesh('gke://mesh-proj'), { project: 'mesh-proj' });
    assert.deepEqual(parseMesh('//container.googleapis.com/projects/p/locations/us-central1/clusters/c'), {
      project: 'p',
      location: 'us-central1',
      name: 'c',
    });
    assert.deepEqual(parseMesh('https://container.googleapis.com/v1/projects/p/locations/l/clusters/c'), {
      project: 'p',
      location: 'l',
      name: 'c',
    });
    assert.equal(parseMesh(undefined), undefined);
    assert.throws(() => parseMesh('file:///mesh'), /MESH=file:\/\/\/mesh is not a form krun understands/);
  });

  test('on Google Cloud only with local evidence; never a network probe to decide', async () => {
    const noDmi = () => Promise.reject(new Error('ENOENT'));
    assert.equal((await detectPlatform({}, noDmi)).onGoogleCloud, false);
    assert.equal((await detectPlatform({ K_SERVICE: 's' }, noDmi)).onGoogleCloud, true);
    assert.equal((await detectPlatform({ GCE_METADATA_HOST: '127.0.0.1:1' }, noDmi)).onGoogleCloud, true);
    assert.deepEqual(await detectPlatform({}, async () => 'Google Compute Engine\n'), {
      onGoogleCloud: true,
      reason: 'DMI product name "Google Compute Engine"',
    });
    assert.equal((await detectPlatform({}, async () => 'KVM')).onGoogleCloud, false);
  });

  test('namespaces from k8s-<ns>@ service accounts, endpoints overridable like gcloud', () => {
    assert.equal(namespaceFromServiceAccount('k8s-fortio@p.iam.gserviceaccount.com'), 'fortio');
    assert.equal(namespaceFromServiceAccount('runner@p.iam.gserviceaccount.com'), undefined);
    assert.equal(apiBase('container', {}), 'https://container.googleapis.com/');
    assert.equal(
      apiBase('container', { CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER: 'http://127.0.0.1:9' }),
      'http://127.0.0.1:9/',
    );
    assert.equal(
      connectGatewayServer('123', 'projects/p/locations/global/memberships/edge', {}),
      'https://connectgateway.googleapis.com/v1/projects/123/locations/global/gkeMemberships/edge',
    );
  });
});
