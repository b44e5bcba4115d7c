// Smoke tests that prove the fixtures are the real thing: tokens, RBAC, CRDs and the Istio CA all behave as in a
// cluster. Every later integration test builds on these behaviours.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { rootCertOf } from '../support/control-plane/istio.ts';
import { startPilotAgent } from '../support/control-plane/pilot-agent.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { statusOf, TestKube } from '../support/kube.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);

function jwtClaims(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('kube-apiserver fixture', () => {
  test('issues istio-ca tokens for a ServiceAccount that TokenReview accepts for that audience only', async () => {
    // Given a namespace with a ServiceAccount (no controller creates one for us)
    const ns = await kube.createNamespace('tokens');
    await kube.createServiceAccount(ns, 'app');
    // When a token is requested for audience istio-ca
    const { token, expirationTimestamp } = await kube.requestToken(ns, 'app', ['istio-ca'], 600);
    // Then it is a JWT naming the ServiceAccount, for that audience, from the configured issuer
    const claims = jwtClaims(token);
    assert.equal(claims.sub, `system:serviceaccount:${ns}:app`);
    assert.deepEqual(claims.aud, ['istio-ca']);
    assert.equal(claims.iss, 'https://kubernetes.default.svc.cluster.local');
    assert.ok(Date.parse(expirationTimestamp) > Date.now());
    // And TokenReview authenticates it for istio-ca ...
    const ok = await kube.reviewToken(token, ['istio-ca']);
    assert.equal(ok.authenticated, true);
    assert.equal(ok.user?.username, `system:serviceaccount:${ns}:app`);
    assert.ok(ok.user?.groups?.includes('system:serviceaccounts'));
    // ... and rejects it for any other audience
    const wrong = await kube.reviewToken(token, ['some-other-audience']);
    assert.notEqual(wrong.authenticated, true);
  });

  test('RBAC denies a ServiceAccount what it was not granted, and allows exactly what it was', async () => {
    const ns = await kube.createNamespace('rbac');
    await kube.createServiceAccount(ns, 'reader');
    const { token } = await kube.requestToken(ns, 'reader', [], 600);
    const sa = kube.as(token);
    // Nothing granted: both reads are forbidden
    assert.equal(await statusOf(sa.get(`/api/v1/namespaces/${ns}/configmaps`)), 403);
    assert.equal(await statusOf(sa.get(`/api/v1/namespaces/${ns}/secrets`)), 403);
    // Grant list on configmaps only
    await kube.grant(
      ns,
      'configmap-reader',
      [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
    );
    await waitFor('RoleBinding to take effect', async () =>
      (await statusOf(sa.get(`/api/v1/namespaces/${ns}/configmaps`))) === 200 ? true : undefined,
    );
    assert.equal(await statusOf(sa.get(`/api/v1/namespaces/${ns}/secrets`)), 403);
    assert.equal(await statusOf(sa.get(`/api/v1/namespaces/${ns}/configmaps/x`)), 403);
  });

  test('Istio CRDs are installed: a ServiceEntry round-trips and schema violations are rejected', async () => {
    const ns = await kube.createNamespace('crd');
    const path = `/apis/networking.istio.io/v1/namespaces/${ns}/serviceentries`;
    const spec = {
      hosts: ['api.example.internal'],
      location: 'MESH_EXTERNAL',
      ports: [{ number: 443, name: 'https', protocol: 'TLS' }],
      resolution: 'DNS',
    };
    await kube.post(path, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'ext' },
      spec,
    });
    const back = await kube.get<{ spec: unknown }>(`${path}/ext`);
    assert.deepEqual(back.spec, spec);
    const bad = kube.post(path, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'bad' },
      spec: { hosts: 'not-a-list' },
    });
    assert.equal(await statusOf(bad), 422);
  });
});

describe('istiod + pilot-agent fixture', () => {
  test('pilot-agent without Envoy gets a workload certificate for its ServiceAccount, signed by istiod', async (t) => {
    // Given a ServiceAccount, its istio-ca token, and the root istiod published into its namespace
    const ns = await kube.createNamespace('mesh');
    await kube.createServiceAccount(ns, 'workload');
    const { token } = await kube.requestToken(ns, 'workload', ['istio-ca'], 3600);
    const rootCert = await rootCertOf(kube, ns);
    // When pilot-agent starts with them
    const dir = mkdtempSync(join(tmpdir(), 'krun-agent-'));
    const agent = await startPilotAgent(plane, { dir, namespace: ns, serviceAccount: 'workload', token, rootCert });
    t.after(async () => {
      await agent.process.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    // Then it writes a certificate chain whose SPIFFE identity is the ServiceAccount
    const chain = await waitFor(
      'workload certificate in OUTPUT_CERTS',
      async () => {
        try {
          return readFileSync(join(agent.certsDir, 'cert-chain.pem'), 'utf8');
        } catch {
          return undefined;
        }
      },
      { process: agent.process, timeoutMs: 60_000 },
    );
    const leaf = new X509Certificate(chain);
    assert.equal(leaf.subjectAltName, `URI:spiffe://cluster.local/ns/${ns}/sa/workload`);
    // And it chains to istiod's root
    const root = new X509Certificate(rootCert);
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), 'leaf is signed by the istiod root');
    assert.ok(new Date(leaf.validTo).getTime() > Date.now());
    assert.equal(readFileSync(join(agent.certsDir, 'root-cert.pem'), 'utf8').trim(), rootCert.trim());
    const key = readFileSync(join(agent.certsDir, 'key.pem'), 'utf8');
    assert.match(key, /PRIVATE KEY/);
  });
});
