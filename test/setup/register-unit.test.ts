// The pure parts of `krun register`: the objects (exactly), the URL prefix, the label selector and the choice of the
// gate's address, with what is missing named when there is none.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NotFoundError, UsageError } from '../../src/lib/errors.ts';
import { loadBalancerAddress, pickGateAddress } from '../../src/lib/setup/gate-address.ts';
import { checkRunServiceName } from '../../src/lib/setup/names.ts';
import { registrationObjects, registrationSelector, urlPrefix } from '../../src/lib/setup/register-objects.ts';

const URL = 'https://fortio-icq63pqnqq-uc.a.run.app';
const labels = {
  'app.kubernetes.io/managed-by': 'krun',
  'krun.dev/registration': 'fortio',
  'service.istio.io/canonical-name': 'fortio',
};
const annotations = { 'krun.dev/cloud-run-url': URL };

describe('register builders', () => {
  test('the objects are the SNI-service template on networking.istio.io/v1, pointing at the gate', () => {
    // Given / When
    const objects = registrationObjects({
      service: 'fortio',
      namespace: 'mesh',
      url: URL,
      gateAddress: '10.1.2.3',
      gatePort: 15442,
      serviceAccount: 'default',
    });
    // Then
    assert.deepEqual(objects, [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'WorkloadEntry',
        metadata: { name: 'fortio-gate', namespace: 'mesh', labels },
        spec: {
          address: '10.1.2.3',
          labels: {
            'krun.dev/registration': 'fortio',
            'service.istio.io/canonical-name': 'fortio',
            'security.istio.io/tlsMode': 'istio',
          },
          ports: { http: 15442, 'http-8080': 15442, grpc: 15442 },
          serviceAccount: 'default',
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'fortio', namespace: 'mesh', labels, annotations },
        spec: {
          ports: [
            { name: 'http', port: 80, protocol: 'TCP', targetPort: 15442 },
            { name: 'http-8080', port: 8080, protocol: 'TCP', targetPort: 15442 },
            { name: 'grpc', port: 8079, protocol: 'TCP', targetPort: 15442 },
          ],
          selector: { 'krun.dev/registration': 'fortio' },
        },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'fortio', namespace: 'mesh', labels },
        spec: { host: 'fortio.mesh.svc.cluster.local', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: 'fortio-icq63pqnqq-uc', namespace: 'mesh', labels, annotations },
        spec: {
          hosts: ['fortio-icq63pqnqq-uc.mesh.svc.cluster.local'],
          location: 'MESH_INTERNAL',
          ports: [{ number: 8080, name: 'http', protocol: 'HTTP', targetPort: 15442 }],
          resolution: 'STATIC',
          workloadSelector: { labels: { 'krun.dev/registration': 'fortio' } },
        },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'fortio-icq63pqnqq-uc', namespace: 'mesh', labels },
        spec: {
          host: 'fortio-icq63pqnqq-uc.mesh.svc.cluster.local',
          trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
        },
      },
    ]);
  });

  test('a URL whose prefix is the service name needs no ServiceEntry of its own', () => {
    const objects = registrationObjects({
      service: 'api',
      namespace: 'mesh',
      url: 'https://api.example.com',
      gateAddress: 'gate.example.com',
      gatePort: 9000,
      serviceAccount: 'app',
    });
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.name}`),
      ['WorkloadEntry/api-gate', 'Service/api', 'DestinationRule/api'],
    );
  });

  test('URL prefixes, selectors and names', () => {
    assert.equal(urlPrefix(URL), 'fortio-icq63pqnqq-uc');
    assert.equal(urlPrefix('https://fortio-123456789.us-central1.run.app'), 'fortio-123456789');
    assert.throws(() => urlPrefix('not a url'), UsageError);
    assert.equal(registrationSelector('fortio'), 'app.kubernetes.io/managed-by=krun,krun.dev/registration=fortio');
    assert.doesNotThrow(() => checkRunServiceName('fortio-cr'));
    assert.throws(() => checkRunServiceName('Fortio'), /"Fortio" is not a valid Cloud Run service name/);
  });
});

describe('the gate address', () => {
  test('the internal load balancer first, then mesh-env IMCON_ADDR, the external one, MCON_ADDR', () => {
    const meshEnv = { IMCON_ADDR: '10.0.0.9', MCON_ADDR: '34.1.1.1' };
    assert.deepEqual(pickGateAddress({ internal: '10.0.0.1', external: '34.0.0.1', meshEnv, missing: [] }), {
      address: '10.0.0.1',
      source: 'service istio-system/krun-gate-internal',
    });
    assert.deepEqual(pickGateAddress({ external: '34.0.0.1', meshEnv, missing: [] }), {
      address: '10.0.0.9',
      source: 'configmap istio-system/mesh-env IMCON_ADDR',
    });
    assert.deepEqual(pickGateAddress({ external: '34.0.0.1', meshEnv: {}, missing: [] }), {
      address: '34.0.0.1',
      source: 'service istio-system/krun-gate',
    });
    assert.deepEqual(pickGateAddress({ meshEnv: { MCON_ADDR: '34.1.1.1' }, missing: [] }), {
      address: '34.1.1.1',
      source: 'configmap istio-system/mesh-env MCON_ADDR',
    });
  });

  test('none: the error names each missing piece and the fix', () => {
    const missing = [
      'service istio-system/krun-gate-internal not found',
      'service istio-system/krun-gate has no load-balancer address yet',
      'configmap istio-system/mesh-env has no IMCON_ADDR or MCON_ADDR',
    ];
    assert.throws(
      () => pickGateAddress({ meshEnv: {}, missing }),
      (err: unknown) =>
        err instanceof NotFoundError &&
        err.message === `no gate address in the cluster: ${missing.join('; ')}` &&
        err.hints.includes('--gate-address ADDRESS'),
    );
  });

  test('a load balancer address is its first ingress IP or host name', () => {
    assert.equal(loadBalancerAddress({ status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } } }), '1.2.3.4');
    assert.equal(
      loadBalancerAddress({ status: { loadBalancer: { ingress: [{ hostname: 'lb.example' }] } } }),
      'lb.example',
    );
    assert.equal(loadBalancerAddress({ status: { loadBalancer: {} } }), undefined);
    assert.equal(loadBalancerAddress(undefined), undefined);
  });
});
