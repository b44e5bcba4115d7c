import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  agentArgs,
  agentEnvironment,
  appMeshEnvironment,
  chooseRootCert,
  type MeshInputs,
  parseProxyConfig,
  podLabels,
  revisionOf,
} from '../../src/lib/mesh/injector.ts';
import { resolveConfig } from '../../src/lib/run/config.ts';

const inputs: MeshInputs = {
  mode: 'proxyless',
  baseDir: '/srv/pod',
  namespace: 'shop',
  name: 'cart',
  serviceAccount: 'cart-sa',
  podName: 'cart-00001-abcd',
  revision: 'cart-00001',
  trustDomain: 'cluster.local',
  xdsAddr: '127.0.0.1:15012',
  caAddr: '127.0.0.1:15012',
  istiodSan: 'istiod.istio-system.svc',
  clusterId: 'Kubernetes',
  meshId: 'proj-123',
  statusPort: 15020,
  envoy: '/opt/istio/envoy',
  isRoot: false,
  onGoogleCloud: false,
};

const common = {
  CLOUD_PLATFORM: 'none',
  PROXY_CONFIG: '{"discoveryAddress":"127.0.0.1:15012","statusPort":15020,"configPath":"/srv/pod/etc/istio/proxy"}',
  ISTIOD_SAN: 'istiod.istio-system.svc',
  PILOT_CERT_PROVIDER: 'istiod',
  JWT_POLICY: 'third-party-jwt',
  POD_NAME: 'cart-00001-abcd',
  POD_NAMESPACE: 'shop',
  INSTANCE_IP: '127.0.0.1',
  SERVICE_ACCOUNT: 'cart-sa',
  TRUST_DOMAIN: 'cluster.local',
  CANONICAL_SERVICE: 'cart',
  CANONICAL_REVISION: 'cart-00001',
  ISTIO_META_CLUSTER_ID: 'Kubernetes',
  ISTIO_META_MESH_ID: 'proj-123',
  ISTIO_META_WORKLOAD_NAME: 'cart',
  ISTIO_META_APP_CONTAINERS: 'app',
  OUTPUT_CERTS: '/srv/pod/var/run/secrets/istio.io',
  GRPC_XDS_BOOTSTRAP: '/srv/pod/etc/istio/proxy/grpc_bootstrap.json',
};

describe('agentEnvironment', () => {
  test('proxyless: no Envoy, the grpc generator, no interception, no DNS capture, unprivileged', () => {
    assert.deepEqual(agentEnvironment(inputs), {
      ...common,
      ISTIO_META_INTERCEPTION_MODE: 'NONE',
      ISTIO_META_DNS_CAPTURE: 'false',
      DISABLE_ENVOY: 'true',
      ISTIO_META_GENERATOR: 'grpc',
      ISTIO_META_UNPRIVILEGED_POD: 'true',
    });
  });
  const withEnvoy = {
    PROXY_CONFIG: JSON.stringify({
      discoveryAddress: '127.0.0.1:15012',
      statusPort: 15020,
      configPath: '/srv/pod/etc/istio/proxy',
      binaryPath: '/opt/istio/envoy',
      proxyBootstrapTemplatePath: '/var/lib/istio/envoy/envoy_bootstrap_tmpl.json',
    }),
  };
  test('sidecar as root on Google Cloud: REDIRECT with DNS capture', () => {
    assert.deepEqual(agentEnvironment({ ...inputs, mode: 'sidecar', isRoot: true, onGoogleCloud: true }), {
      ...common,
      ...withEnvoy,
      CLOUD_PLATFORM: 'gcp',
      ISTIO_META_INTERCEPTION_MODE: 'REDIRECT',
      ISTIO_META_DNS_CAPTURE: 'true',
    });
  });
  test('whitebox: Envoy’s HTTP proxy port, no interception', () => {
    assert.deepEqual(agentEnvironment({ ...inputs, mode: 'whitebox' }), {
      ...common,
      ...withEnvoy,
      ISTIO_META_INTERCEPTION_MODE: 'NONE',
      ISTIO_META_DNS_CAPTURE: 'false',
      HTTP_PROXY_PORT: '15007',
      ISTIO_META_UNPRIVILEGED_POD: 'true',
    });
  });
  test('an explicit PROXY_CONFIG is merged over krun’s: its fields win, krun’s paths stay', async () => {
    const explicit = await parseProxyConfig('statusPort: 15021\nholdApplicationUntilProxyStarts: true\n');
    assert.deepEqual(JSON.parse(agentEnvironment({ ...inputs, proxyConfig: explicit }).PROXY_CONFIG ?? ''), {
      discoveryAddress: '127.0.0.1:15012',
      statusPort: 15021,
      configPath: '/srv/pod/etc/istio/proxy',
      holdApplicationUntilProxyStarts: true,
    });
    assert.deepEqual(await parseProxyConfig('{"discoveryAddress": "istiod.example:15012"}'), {
      discoveryAddress: 'istiod.example:15012',
    });
    for (const bad of ['[1, 2]', 'just text', '{"a": ']) {
      await assert.rejects(
        parseProxyConfig(bad),
        /^UsageError: PROXY_CONFIG is not a ProxyConfig \(a YAML or JSON mapping\)$/,
      );
    }
  });
  test('a CA address other than the discovery address is passed as CA_ADDR', () => {
    assert.equal(agentEnvironment({ ...inputs, caAddr: 'ca.example:443' }).CA_ADDR, 'ca.example:443');
    assert.equal(agentEnvironment(inputs).CA_ADDR, undefined);
  });
  test('with CA_POOL the agent serves krun’s workload certificate files (CA_PROVIDER), else asks its CA', () => {
    const files = agentEnvironment({ ...inputs, workloadCertificates: true });
    assert.equal(files.CA_PROVIDER, 'GkeWorkloadCertificate');
    assert.equal(files.XDS_ROOT_CA, '/srv/pod/var/run/secrets/istio/root-cert.pem');
    assert.equal(agentEnvironment(inputs).CA_PROVIDER, undefined);
    assert.equal(agentEnvironment(inputs).XDS_ROOT_CA, undefined);
  });
  test('the command is pilot-agent proxy sidecar with the namespace domain', () => {
    assert.deepEqual(agentArgs('shop'), ['proxy', 'sidecar', '--domain', 'shop.svc.cluster.local']);
  });
  test('canonical revision: K_REVISION, else latest', () => {
    assert.equal(revisionOf({ K_REVISION: 'cart-00002' }), 'cart-00002');
    assert.equal(revisionOf({}), 'latest');
  });
});

describe('Pod files', () => {
  test('etc/istio/pod/labels in downward API format', () => {
    assert.equal(
      podLabels(inputs),
      [
        'app="cart"',
        'security.istio.io/tlsMode="istio"',
        'service.istio.io/canonical-name="cart"',
        'service.istio.io/canonical-revision="cart-00001"',
        'version="cart-00001"',
      ].join('\n'),
    );
  });
  test('root certificate: the ConfigMap, else CAROOT_ISTIOD, else none', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n';
    const other = '-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n';
    assert.deepEqual(chooseRootCert(pem, { value: other, source: 'mesh-env CAROOT_ISTIOD' }), {
      pem,
      source: 'ConfigMap istio-ca-root-cert',
    });
    assert.deepEqual(chooseRootCert(undefined, { value: other, source: 'mesh-env CAROOT_ISTIOD' }), {
      pem: other,
      source: 'mesh-env CAROOT_ISTIOD',
    });
    assert.equal(chooseRootCert('', { value: undefined, source: 'unset' }), undefined);
  });
});

describe('appMeshEnvironment', () => {
  const certs = {
    KRUN_MESH_CERTS_DIR: '/srv/pod/var/run/secrets/istio.io',
    KRUN_MESH_CERT_CHAIN: '/srv/pod/var/run/secrets/istio.io/cert-chain.pem',
    KRUN_MESH_KEY: '/srv/pod/var/run/secrets/istio.io/key.pem',
    KRUN_MESH_ROOT_CERT: '/srv/pod/var/run/secrets/istio.io/root-cert.pem',
  };
  test('none adds nothing', () => {
    assert.deepEqual(appMeshEnvironment('none', '/srv/pod'), {});
  });
  test('proxyless: the certificates and the gRPC xDS bootstrap', () => {
    assert.deepEqual(appMeshEnvironment('proxyless', '/srv/pod'), {
      KRUN_MESH_MODE: 'proxyless',
      ...certs,
      GRPC_XDS_BOOTSTRAP: '/srv/pod/etc/istio/proxy/grpc_bootstrap.json',
    });
  });
  test('whitebox: HTTP_PROXY to the agent’s proxy port, loopback not proxied', () => {
    assert.deepEqual(appMeshEnvironment('whitebox', '/srv/pod'), {
      KRUN_MESH_MODE: 'whitebox',
      ...certs,
      HTTP_PROXY: 'http://127.0.0.1:15007',
      http_proxy: 'http://127.0.0.1:15007',
      NO_PROXY: 'localhost,127.0.0.1,::1',
      no_proxy: 'localhost,127.0.0.1,::1',
    });
  });
  test('sidecar: the certificates only (traffic is captured)', () => {
    assert.deepEqual(appMeshEnvironment('sidecar', '/srv/pod'), { KRUN_MESH_MODE: 'sidecar', ...certs });
  });
});

describe('mesh settings', () => {
  const resolve = (env: Record<string, string>, meshEnv: Record<string, string> = {}) =>
    resolveConfig({ flags: {}, env, meshEnv, hostname: 'h', isRoot: false, cwd: '/w' });
  test('defaults: auto, in-cluster istiod, Istio’s cluster id, the trust domain as mesh id', () => {
    const c = resolve({});
    assert.deepEqual(
      [c.meshMode, c.xdsAddr, c.caAddr, c.clusterId, c.meshId, c.interceptionMode, c.outboundIpRangesInclude],
      [
        { value: 'auto', source: 'default' },
        { value: 'istiod.istio-system.svc:15012', source: 'default' },
        { value: 'istiod.istio-system.svc:15012', source: 'the xDS address' },
        { value: 'Kubernetes', source: "default (Istio's)" },
        { value: 'cluster.local', source: 'the trust domain' },
        { value: 'REDIRECT', source: 'default' },
        { value: ['*'], source: 'default' },
      ],
    );
  });
  test('mesh-env IMCON_ADDR gives the xDS address; PROJECT_NUMBER the mesh id; ports are parsed', () => {
    const c = resolve({ OUTBOUND_PORTS_EXCLUDE: '5432, 6379' }, { IMCON_ADDR: '10.0.0.9', PROJECT_NUMBER: '42' });
    assert.deepEqual(c.xdsAddr, { value: '10.0.0.9:15012', source: 'derived from mesh-env IMCON_ADDR' });
    assert.deepEqual(c.meshId, { value: 'proj-42', source: 'derived from PROJECT_NUMBER' });
    assert.deepEqual(c.outboundPortsExclude, { value: [5432, 6379], source: 'env OUTBOUND_PORTS_EXCLUDE' });
  });
  test('a bad mode or interception mode is a usage error naming the setting', () => {
    assert.throws(() => resolve({ KRUN_MESH_MODE: 'magic' }), {
      message: 'env KRUN_MESH_MODE is "magic": not one of auto, sidecar, whitebox, proxyless, none',
    });
    assert.throws(() => resolve({ ISTIO_META_INTERCEPTION_MODE: 'TPROXY' }), {
      message: 'env ISTIO_META_INTERCEPTION_MODE is "TPROXY": not REDIRECT or NONE',
    });
  });
});
