// The pure parts of `krun setup-cluster`: template rendering, mesh-env, and the gate's objects from templates/.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KrunError } from '../../src/lib/errors.ts';
import { clusterObjects, gateArgs, meshEnvObject } from '../../src/lib/setup/cluster-objects.ts';
import { renderTemplate } from '../../src/lib/setup/templates.ts';

const labels = { 'app.kubernetes.io/managed-by': 'krun' };

describe('setup-cluster builders', () => {
  test('templates: a whole placeholder keeps its type, a partial one is text, an unknown one is an error', async () => {
    const ph = (name: string) => `\${${name}}`;
    const text = `kind: X\nmetadata:\n  name: a-${ph('NAME')}\nspec:\n  port: ${ph('PORT')}\n  args: ${ph('ARGS')}\n---\n# empty\n`;
    assert.deepEqual(await renderTemplate(text, { NAME: 'b', PORT: 15442, ARGS: ['gate', '-v'] }), [
      { kind: 'X', metadata: { name: 'a-b' }, spec: { port: 15442, args: ['gate', '-v'] } },
    ]);
    await assert.rejects(
      renderTemplate(`kind: ${ph('NOPE')}\n`, {}, 'x.yaml'),
      (err: unknown) =>
        err instanceof KrunError && err.message === `template x.yaml uses ${ph('NOPE')}, which krun doesn't set`,
    );
  });

  test('mesh-env holds only the known keys, in the original names', () => {
    assert.deepEqual(meshEnvObject({ PROJECT_ID: 'p', CLUSTER_NAME: '', IMCON_ADDR: '10.0.0.1', OTHER: 'x' }), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'mesh-env', namespace: 'istio-system', labels },
      data: { PROJECT_ID: 'p', IMCON_ADDR: '10.0.0.1' },
    });
  });

  test('the gate runs `krun gate`, with its port when not the default and the operator’s flags', () => {
    assert.deepEqual(gateArgs({ gatePort: 15442, gateArgs: [] }), ['gate']);
    assert.deepEqual(gateArgs({ gatePort: 9000, gateArgs: ['-v'] }), ['gate', '--port', '9000', '-v']);
  });

  test('the objects: the gate, its RBAC and Services, mesh-env’s reader grant and mesh-env', async () => {
    // Given / When
    const objects = await clusterObjects({
      image: 'example.com/krun:1',
      gateArgs: ['-v'],
      gatePort: 15442,
      meshEnv: { PROJECT_ID: 'p' },
    });
    // Then
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`),
      [
        'ServiceAccount/istio-system/krun-gate',
        'Role/istio-system/krun-gate',
        'RoleBinding/istio-system/krun-gate',
        'ClusterRole//krun-gate',
        'ClusterRoleBinding//krun-gate',
        'Deployment/istio-system/krun-gate',
        'Service/istio-system/krun-gate',
        'Service/istio-system/krun-gate-internal',
        'Role/istio-system/krun-mesh-env-reader',
        'RoleBinding/istio-system/krun-mesh-env-reader-all',
        'ConfigMap/istio-system/mesh-env',
      ],
    );
    for (const o of objects) assert.deepEqual(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'krun');
    const deployment = objects[5] as unknown as { spec: { template: { spec: unknown } } };
    assert.deepEqual(deployment.spec.template.spec, {
      serviceAccountName: 'krun-gate',
      // not root, no capabilities, no way to gain privileges
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      terminationGracePeriodSeconds: 30,
      containers: [
        {
          name: 'gate',
          image: 'example.com/krun:1',
          args: ['gate', '-v'],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          env: [{ name: 'WORKLOAD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
          ports: [
            { name: 'tls-sni', containerPort: 15442, protocol: 'TCP' },
            { name: 'http-admin', containerPort: 15021, protocol: 'TCP' },
          ],
          readinessProbe: { httpGet: { path: '/readyz', port: 'http-admin' } },
          livenessProbe: { httpGet: { path: '/healthz', port: 'http-admin' } },
          resources: { requests: { cpu: '10m', memory: '64Mi' } },
        },
      ],
    });
    assert.deepEqual(objects[9], {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'krun-mesh-env-reader-all', namespace: 'istio-system', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'krun-mesh-env-reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:authenticated' }],
    });
  });
});
