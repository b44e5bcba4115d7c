// The gate `krun setup-cluster` installs runs this `krun gate`: the Deployment's arguments are ones the command
// accepts (it starts with them and listens on the template's port), and its probes reach the admin port it serves.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_ADMIN_PORT } from '../../src/lib/gate/defaults.ts';
import { clusterObjects } from '../../src/lib/setup/cluster-objects.ts';
import { krun } from '../support/cli.ts';
import { freePort } from '../support/control-plane/ports.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { writeKubeconfig } from '../support/kubeconfig.ts';
import { startGateCli } from './support.ts';

interface Container {
  args: string[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
}

test('the Deployment from setup-cluster runs a `krun gate` that accepts its flags and serves its probes', async () => {
  const plane = await controlPlane();
  const work = await mkdtemp(join(tmpdir(), 'krun-gate-template-'));
  after(() => rm(work, { recursive: true, force: true }));
  // Given the objects setup-cluster applies, with a non-default port and operator flags
  const port = await freePort();
  const objects = await clusterObjects({
    image: 'example.com/krun:1',
    gateArgs: ['--name-fallback', '--max-streams-per-connection=50'],
    gatePort: port,
    meshEnv: {},
  });
  const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as {
    spec: { template: { spec: { containers: Container[]; terminationGracePeriodSeconds: number } } };
  };
  const [container] = deployment.spec.template.spec.containers;
  assert.ok(container);
  assert.deepEqual(container.args, [
    'gate',
    '--port',
    String(port),
    '--name-fallback',
    '--max-streams-per-connection=50',
  ]);
  // the probes name the admin port, which is the gate's default admin port
  const admin = container.ports.find((p) => p.name === container.readinessProbe.httpGet.port);
  assert.equal(admin?.containerPort, DEFAULT_ADMIN_PORT);
  assert.equal(container.livenessProbe.httpGet.port, admin?.name);
  const help = await krun(['gate', '--help']);
  assert.match(help.stdout, new RegExp(`--admin-port=<value> +\\[default: ${DEFAULT_ADMIN_PORT},`));
  assert.match(help.stdout, /--grace-period=<value> +\[default: 25s,/);
  assert.ok(deployment.spec.template.spec.terminationGracePeriodSeconds > 25, 'the Pod outlives the drain');

  // When the gate runs with exactly those arguments (plus what a Pod gets from its environment)
  const kubeconfig = writeKubeconfig(join(work, 'kubeconfig'), plane.access);
  const [, ...args] = container.args;
  const gate = await startGateCli([...args, '--kubeconfig', kubeconfig, '--mesh-env-namespace', 'none'], {
    HOME: work,
    CLOUD_PLATFORM: 'none',
  });
  after(() => gate.stop());
  // Then the port flag was taken over the test's own `--port 0`, and the probes' paths answer
  assert.equal(gate.port, port);
  assert.equal((await gate.admin(container.readinessProbe.httpGet.path)).status, 200);
  assert.equal((await gate.admin(container.livenessProbe.httpGet.path)).body, 'ok\n');
});
