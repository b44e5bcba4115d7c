// Traffic Director mode: the exact gRPC xDS bootstrap for fixed inputs (accepted by @grpc/grpc-js-xds's own
// bootstrap validation), the MESH=td:… syntax, and `krun run` on the emulated Cloud Run metadata server writing it and
// starting the app with GRPC_XDS_BOOTSTRAP, without looking for a cluster.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { validateBootstrapConfig } from '@grpc/grpc-js-xds/build/src/xds-bootstrap.js';
import { parseTdMesh, tdGrpcBootstrap } from '../../src/lib/mesh/td.ts';
import { krun } from '../support/cli.ts';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { launcherCase } from '../support/launcher-case.ts';
import { TD_NODE } from './support/td-inputs.ts';

const INPUTS = {
  ...TD_NODE,
  instanceIp: '10.9.8.7',
  certDir: '/var/run/secrets/workload-spiffe-credentials',
};

describe('Traffic Director bootstrap', () => {
  test('exact JSON for fixed inputs', () => {
    assert.deepEqual(tdGrpcBootstrap(INPUTS), {
      xds_servers: [
        {
          server_uri: 'trafficdirector.googleapis.com:443',
          channel_creds: [{ type: 'google_default' }],
          server_features: ['xds_v3'],
        },
      ],
      node: {
        id: 'projects/123456789012/networks/scope:edge/nodes/52fdfc07-2182-454f-963f-5f0f9a621d72~10.9.8.7',
        cluster: 'cluster',
        metadata: { INSTANCE_IP: '10.9.8.7' },
        locality: { zone: 'us-central1-c' },
      },
      certificate_providers: {
        google_cloud_private_spiffe: {
          plugin_name: 'file_watcher',
          config: {
            certificate_file: '/var/run/secrets/workload-spiffe-credentials/certificates.pem',
            private_key_file: '/var/run/secrets/workload-spiffe-credentials/private_key.pem',
            ca_certificate_file: '/var/run/secrets/workload-spiffe-credentials/ca_certificates.pem',
            refresh_interval: '600s',
          },
        },
      },
      server_listener_resource_name_template: 'grpc/server?xds.resource.listening_address=%s',
    });
  });

  test("gRPC's xDS client accepts it", () => {
    const info = validateBootstrapConfig(tdGrpcBootstrap(INPUTS));
    assert.equal(info.xdsServers[0]?.server_uri, 'trafficdirector.googleapis.com:443');
    assert.deepEqual(info.xdsServers[0]?.channel_creds, [{ type: 'google_default', config: undefined }]);
    assert.equal(info.node.locality?.zone, 'us-central1-c');
    assert.equal(info.serverListenerResourceNameTemplate, 'grpc/server?xds.resource.listening_address=%s');
  });

  test("the original's MESH=td:… syntax", () => {
    assert.deepEqual(parseTdMesh('td:projects=42&scopes=edge'), { projectNumber: '42', network: 'scope:edge' });
    assert.deepEqual(parseTdMesh('td:'), { projectNumber: undefined, network: 'scope:default' });
    assert.deepEqual(parseTdMesh('td:?scopes=a'), { projectNumber: undefined, network: 'scope:a' });
    assert.deepEqual(parseTdMesh('td:networks=vpc1'), { projectNumber: undefined, network: 'vpc1' });
    assert.equal(parseTdMesh('gke://p'), undefined);
    assert.equal(parseTdMesh(undefined), undefined);
    assert.throws(() => parseTdMesh('td:project=42'), /MESH=td:project=42: unknown parameter "project"/);
    assert.throws(() => parseTdMesh('td:projects=my-proj'), /projects must be the numeric project number/);
  });
});

describe('krun run with MESH=td:…', () => {
  let gcp: GcpEmulator;
  let work: string;
  before(async () => {
    gcp = await startGcpEmulator({ projectNumber: '555566667777', zone: 'europe-west1-b', region: 'europe-west1' });
    work = await mkdtemp(join(tmpdir(), 'krun-td-'));
  });
  after(async () => {
    await gcp.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function run(extra: Record<string, string>) {
    const { dir, env } = await launcherCase(work, { ...gcp.env(), K_SERVICE: 'td-app', ...extra });
    const script = `echo "$KRUN_MESH_MODE $GRPC_XDS_BOOTSTRAP"; cat "$GRPC_XDS_BOOTSTRAP" > ${dir}/seen.json`;
    const r = await krun(['run', '--', 'sh', '-c', script], { cleanEnv: env });
    return { r, dir };
  }

  test('writes the bootstrap, gives its path to the app, and never looks for a GKE cluster', async () => {
    const { r, dir } = await run({ MESH: 'td:projects=123456789012&scopes=edge' });
    assert.equal(r.status, 0, r.stderr);
    const path = join(dir, 'etc/istio/proxy/grpc_bootstrap.json');
    assert.equal(r.stdout, `td ${path}\n`);
    assert.equal((await stat(path)).mode & 0o777, 0o644);
    const seen = JSON.parse(await readFile(join(dir, 'seen.json'), 'utf8'));
    const node = seen.node.id as string;
    const ip = seen.node.metadata.INSTANCE_IP as string;
    assert.match(node, /^projects\/123456789012\/networks\/scope:edge\/nodes\/[0-9a-f-]{36}~/);
    assert.ok(node.endsWith(`~${ip}`), node);
    // Everything else is exactly the bootstrap of those inputs: the zone from the metadata server
    assert.deepEqual(
      seen,
      tdGrpcBootstrap({
        ...INPUTS,
        network: 'scope:edge',
        nodeId: node.split('/nodes/')[1] ?? '',
        instanceIp: ip,
        zone: 'europe-west1-b',
        certDir: join(dir, 'var/run/secrets/workload-spiffe-credentials'),
      }),
    );
    assert.match(r.stderr, /"message":"mesh mode td: Traffic Director/);
    assert.doesNotMatch(r.stderr, /GKE cluster/);
  });

  test('the project number comes from the metadata server; XDS_ADDR overrides the server', async () => {
    const { r, dir } = await run({ MESH: 'td:', XDS_ADDR: 'td.example.internal:8443' });
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(await readFile(join(dir, 'seen.json'), 'utf8'));
    assert.match(seen.node.id, /^projects\/555566667777\/networks\/scope:default\/nodes\//);
    assert.equal(seen.xds_servers[0].server_uri, 'td.example.internal:8443');
  });

  test('off Google Cloud, the project number must be given', async () => {
    const { r } = await run({ MESH: 'td:scopes=edge', GCE_METADATA_HOST: '', K_SERVICE: '' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /error: MESH=td:scopes=edge needs the project number of the Traffic Director project/);
    assert.match(r.stderr, /Try:\n {2}MESH=td:projects=PROJECT_NUMBER/);
  });
});
