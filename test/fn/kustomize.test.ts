// End to end: the real kustomize (`kubectl kustomize --enable-alpha-plugins`, v5.5) runs a kustomization with two
// containerized KRM functions through a `docker` symlink to krun first on PATH. krun turns kustomize's own
// `docker run` command lines into Pods in the real apiserver (the simulated node runs them); the rendered output
// must equal the expected YAML exactly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN } from '../support/cli.ts';
import { type FnWorld, fnWorld } from '../support/fn/world.ts';

const KUBECTL = '/usr/bin/kubectl';
const FIXTURE = new URL('../fixtures/fn/kustomize/', import.meta.url).pathname;

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('kubectl kustomize with the krun docker shim', () => {
  let world: FnWorld;
  before(async () => {
    assert.ok(existsSync(KUBECTL), `${KUBECTL} (with kustomize v5) is needed for this test: install kubectl`);
    world = await fnWorld();
  });
  after(() => world?.stop());

  test('renders the kustomization with both functions run as Pods, byte for byte', async () => {
    const shims = join(world.dir, 'shims');
    mkdirSync(shims);
    symlinkSync(BIN, join(shims, 'docker'));
    const env = {
      // The shim first; then the Node that runs krun (bin/run.js is `#!/usr/bin/env node`).
      PATH: `${shims}:${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      HOME: world.dir,
      KUBECONFIG: world.kubeconfig,
      KRUN_NAMESPACE: world.namespace,
      CLOUD_PLATFORM: 'none',
    };
    const result = await run(KUBECTL, ['kustomize', '--enable-alpha-plugins', FIXTURE], env);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, readFileSync(join(FIXTURE, 'expected.yaml'), 'utf8'));
    // Each function's stderr passed through kustomize.
    assert.equal(result.stderr.match(/^set-label: labelled 2 items$/gm)?.length, 2, result.stderr);

    // What kustomize asked for, as the Pods show it: nobody, no network, the mount as a ConfigMap, its env.
    const pods = [...world.node.seen.values()];
    assert.equal(pods.length, 2);
    for (const { pod, networkPolicies } of pods) {
      assert.deepEqual(networkPolicies, [pod.metadata.name]);
      assert.equal(pod.spec.containers[0]?.image, 'krun.test/fn/set-label:v1');
    }
    const withMount = pods.find((p) => p.pod.spec.volumes?.length);
    assert.ok(withMount, 'the set-tier Pod has a volume');
    const { env: podEnv } = withMount.pod.spec.containers[0] ?? {};
    assert.deepEqual(podEnv, [
      { name: 'LABEL_SUFFIX', value: '-eu' },
      { name: 'LOG_TO_STDERR', value: 'true' },
      { name: 'STRUCTURED_RESULTS', value: 'true' },
    ]);
    assert.equal(
      withMount.configMaps.some((n) => n === `${withMount.pod.metadata.name}-mount-0`),
      true,
    );
    assert.deepEqual(await world.names('pods'), []);
    assert.deepEqual(await world.names('configmaps'), []);
    assert.deepEqual(await world.names('networkpolicies'), []);
  });
});
