// The gRPC xDS bootstrap krun's proxyless mode gives the app is accepted by a real xDS client: a Node app run by
// `krun run` resolves a Service registered in the real apiserver through pilot-agent and the real istiod
// (@grpc/grpc-js-xds, xds:/// target) and gets its reply from a gRPC server the test runs on loopback.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { krun } from '../support/cli.ts';
import { rootCertOf } from '../support/control-plane/istio.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { TestKube } from '../support/kube.ts';
import { ECHO } from './support/echo.ts';
import { meshWorkload } from './support/workload.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const work = await mkdtemp(join(tmpdir(), 'krun-xds-'));
after(() => rm(work, { recursive: true, force: true }));

const CLIENT = new URL('./support/xds-client.ts', import.meta.url).pathname;
const SERVICE_PORT = 7070;

/** A loopback gRPC server answering Echo/Say; returns its port. */
async function echoServer(name: string): Promise<number> {
  const server = new grpc.Server();
  server.addService(ECHO, {
    say: (call: grpc.ServerUnaryCall<string, string>, done: grpc.sendUnaryData<string>) =>
      done(null, `${name} heard ${call.request}`),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  after(() => server.forceShutdown());
  return port;
}

/**
 * Service `echo` (port 7070, gRPC) whose one endpoint is the loopback server. The apiserver refuses loopback
 * addresses in Endpoints and EndpointSlices, so the endpoint is a WorkloadEntry the Service selects: the way Istio
 * adds a VM (or a Cloud Run instance) to a Kubernetes Service.
 */
async function registerEcho(ns: string, targetPort: number): Promise<void> {
  await kube.post(`/api/v1/namespaces/${ns}/services`, {
    metadata: { name: 'echo' },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: SERVICE_PORT, targetPort, appProtocol: 'grpc' }] },
  });
  await kube.post(`/apis/networking.istio.io/v1/namespaces/${ns}/workloadentries`, {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: 'echo-loopback', labels: { app: 'echo' } },
    spec: { address: '127.0.0.1', labels: { app: 'echo' }, serviceAccount: 'echo' },
  });
}

describe('krun run, proxyless gRPC through xDS', () => {
  test('the app resolves xds:///echo.<ns>.svc.cluster.local:7070 and reaches the loopback server', async () => {
    // Given a Service in the apiserver whose endpoint is a gRPC server on loopback
    const w = await meshWorkload(plane, kube, work);
    await rootCertOf(kube, w.ns);
    await registerEcho(w.ns, await echoServer('echo'));
    // When krun runs a Node gRPC client as the app, in proxyless mode
    const target = `xds:///echo.${w.ns}.svc.cluster.local:${SERVICE_PORT}`;
    const r = await krun(['run', '--', process.execPath, CLIENT, target, 'hello over xds'], { cleanEnv: w.env });
    // Then the client got the reply through the xDS-resolved endpoint
    const bootstrap = await readFile(join(w.dir, 'etc/istio/proxy/grpc_bootstrap.json'), 'utf8').catch((e) => `${e}`);
    assert.equal(r.status, 0, `${r.stderr}\nbootstrap: ${bootstrap}`);
    assert.equal(r.stdout, 'echo heard hello over xds\n');
    // And the bootstrap names pilot-agent's xDS socket by its absolute path under the base directory
    const servers = (JSON.parse(bootstrap) as { xds_servers: { server_uri: string }[] }).xds_servers;
    assert.deepEqual(
      servers.map((s) => s.server_uri),
      [`unix:///${join(w.dir, 'etc/istio/proxy/XDS')}`],
    );
  });
});
