// The node-side installer (templates/runtime-installer.sh) run for real with sh against a temporary root seeded with
// containerd and CRI-O configurations, a stand-in artifact image directory, and a stand-in service manager that
// records its calls. containerd 1.x configs are validated before and after by the real `containerd config dump`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { KONTAIN } from '../../src/lib/runtime/definitions.ts';
import { INSTALLER_SCRIPT, installerEnv } from '../../src/lib/runtime/installer.ts';
import { planNode } from '../../src/lib/runtime/plan.ts';
import { ensureContainerd } from '../support/fixtures/containerd.ts';
import { nodeObject } from './nodes.ts';

const run = promisify(execFile);
const containerd = await ensureContainerd((line) => process.stderr.write(`[containerd fixture] ${line}\n`));
const work = await mkdtemp(join(tmpdir(), 'krun-runtime-installer-'));
after(() => rm(work, { recursive: true, force: true }));

/** A realistic containerd 1.x config: CRI settings and a runc runtime with systemd cgroups. */
const CONFIG_V2 = `version = 2
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
`;

const KRUN_TABLE_V2 = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.krun]
  runtime_type = "io.containerd.krun.v2"
  privileged_without_host_devices = true
  pod_annotations = ["app.kontain.*"]
`;

let n = 0;
interface Node {
  readonly root: string;
  readonly calls: string;
  file(path: string): string;
  read(path: string): Promise<string>;
  installer(action: 'install' | 'revert'): Promise<{ code: number; stdout: string; stderr: string }>;
  restarts(): Promise<string>;
}

/** A node's root with `files` seeded, for a node reporting `runtime`. */
async function node(runtime: string, files: Record<string, string>): Promise<Node> {
  const dir = join(work, `node-${++n}`);
  const root = join(dir, 'root');
  const artifacts = join(dir, 'artifacts');
  await mkdir(join(root, 'var/lib'), { recursive: true });
  for (const [path, text] of Object.entries({
    ...Object.fromEntries(Object.entries(files).map(([p, t]) => [join(root, p), t])),
    [join(artifacts, 'bin/km')]: 'km\n',
    [join(artifacts, 'bin/krun')]: 'krun\n',
    [join(artifacts, 'shim/containerd-shim-krun-v2')]: 'shim\n',
  })) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }
  // The stand-in for systemctl: records each call.
  const calls = join(dir, 'systemctl.log');
  const systemctl = join(dir, 'systemctl');
  await writeFile(systemctl, `#!/bin/sh\necho "$*" >> ${calls}\n`);
  await chmod(systemctl, 0o755);
  const env = {
    PATH: process.env.PATH,
    ...installerEnv(KONTAIN, planNode(nodeObject({ name: 'n', runtime }), KONTAIN)),
    KRUN_ARTIFACTS: artifacts,
    KRUN_SYSTEMCTL: systemctl,
  };
  const file = (path: string) => join(root, path);
  return {
    root,
    calls,
    file,
    read: (path) => readFile(file(path), 'utf8'),
    restarts: async () => (existsSync(calls) ? readFile(calls, 'utf8') : ''),
    installer: async (action) => {
      try {
        const r = await run('sh', [INSTALLER_SCRIPT, action, root], { env });
        return { code: 0, stdout: r.stdout, stderr: r.stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    },
  };
}

/** `containerd config dump` of a config file: the merged configuration containerd would run with. */
async function dump(config: string): Promise<string> {
  const r = await run(containerd, ['--config', config, 'config', 'dump']);
  return r.stdout;
}

/** The krun runtime table as containerd parsed it (the dump's lines of that table). */
function krunTable(dumped: string, plugin = '"io.containerd.grpc.v1.cri"'): string[] {
  const header = `[plugins.${plugin}.containerd.runtimes.krun]`;
  const start = dumped.indexOf(header);
  assert.ok(start >= 0, `containerd's merged config has ${header}:\n${dumped}`);
  const body = dumped.slice(start + header.length).split('\n\n')[0] ?? '';
  return body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(runtime_type|pod_annotations|privileged_without_host_devices) =/.test(l));
}

const EXPECTED_KEYS = [
  'pod_annotations = ["app.kontain.*"]',
  'privileged_without_host_devices = true',
  'runtime_type = "io.containerd.krun.v2"',
];

describe('runtime installer script', () => {
  test('containerd 1.x: merges into an existing config.toml with a backup, idempotently, and reverts cleanly', async () => {
    // Given a containerd 1.7 node with a real config, which containerd accepts and which has no krun runtime
    const host = await node('containerd://1.7.27', { 'etc/containerd/config.toml': CONFIG_V2 });
    const config = host.file('etc/containerd/config.toml');
    assert.doesNotMatch(await dump(config), /runtimes\.krun/);

    // When the installer runs
    const first = await host.installer('install');

    // Then the runtime table is appended, the original kept as the backup, and containerd restarted
    assert.equal(first.code, 0, first.stderr);
    const installed = await host.read('etc/containerd/config.toml');
    assert.equal(
      installed,
      `${CONFIG_V2}\n# Added by krun runtime install kontain; krun runtime uninstall kontain restores the backup.\n${KRUN_TABLE_V2}`,
    );
    assert.equal(await host.read('etc/containerd/config.toml.krun-kontain.bak'), CONFIG_V2);
    assert.equal(await host.restarts(), 'restart containerd\n');
    // and the real containerd reads it, with the krun runtime and the runc settings both present
    const dumped = await dump(config);
    assert.deepEqual(krunTable(dumped), EXPECTED_KEYS);
    assert.match(
      dumped,
      /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.runc\.options\]\n\s+SystemdCgroup = true/,
    );
    assert.match(dumped, /sandbox_image = "registry\.k8s\.io\/pause:3\.9"/);
    // and the artifacts are on the node
    assert.equal(await host.read('opt/kontain/bin/km'), 'km\n');
    assert.equal(await host.read('opt/kontain/bin/krun'), 'krun\n');
    assert.equal(await host.read('usr/local/bin/containerd-shim-krun-v2'), 'shim\n');

    // When it runs again
    const second = await host.installer('install');
    // Then nothing changes but another restart
    assert.equal(second.code, 0, second.stderr);
    assert.equal(await host.read('etc/containerd/config.toml'), installed);
    assert.equal(await host.read('etc/containerd/config.toml.krun-kontain.bak'), CONFIG_V2);
    assert.match(second.stdout, /keeping the backup of \/etc\/containerd\/config.toml from the first install/);

    // When it reverts
    const revert = await host.installer('revert');
    // Then the config is the original, byte for byte, the backup and artifacts are gone, and containerd restarted
    assert.equal(revert.code, 0, revert.stderr);
    assert.equal(await host.read('etc/containerd/config.toml'), CONFIG_V2);
    assert.equal(existsSync(host.file('etc/containerd/config.toml.krun-kontain.bak')), false);
    assert.equal(existsSync(host.file('opt')), false);
    assert.equal(existsSync(host.file('usr')), false);
    assert.equal(existsSync(host.file('var/lib/krun')), false);
    assert.doesNotMatch(await dump(config), /runtimes\.krun/);
    assert.equal(await host.restarts(), 'restart containerd\nrestart containerd\nrestart containerd\n');
    // and a second revert is harmless
    assert.equal((await host.installer('revert')).code, 0);
    assert.equal(await host.read('etc/containerd/config.toml'), CONFIG_V2);
  });

  test('containerd 1.x: replaces a krun table already in the config rather than duplicating it', async () => {
    // Given a config with an older krun entry
    const old = `${CONFIG_V2}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.krun]\n  runtime_type = "io.containerd.old.v1"\n\n  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.krun.options]\n    BinaryName = "/old"\n`;
    const host = await node('containerd://1.6.20', { 'etc/containerd/config.toml': old });
    // When
    const r = await host.installer('install');
    // Then only krun's table remains, and containerd reads it
    assert.equal(r.code, 0, r.stderr);
    const text = await host.read('etc/containerd/config.toml');
    assert.equal(text.split('containerd.runtimes.krun]').length, 2);
    assert.doesNotMatch(text, /old/);
    assert.deepEqual(krunTable(await dump(host.file('etc/containerd/config.toml'))), EXPECTED_KEYS);
    // and revert restores the old entry
    assert.equal((await host.installer('revert')).code, 0);
    assert.equal(await host.read('etc/containerd/config.toml'), old);
  });

  test('containerd 1.x: a version 1 config gets the old plugin id, and containerd migrates it', async () => {
    // Given a config with no version (v1)
    const v1 = '[plugins.cri]\n  sandbox_image = "registry.k8s.io/pause:3.9"\n';
    const host = await node('containerd://1.6.20', { 'etc/containerd/config.toml': v1 });
    // When
    const r = await host.installer('install');
    // Then
    assert.equal(r.code, 0, r.stderr);
    assert.match(await host.read('etc/containerd/config.toml'), /\n\[plugins\.cri\.containerd\.runtimes\.krun\]\n/);
    assert.deepEqual(krunTable(await dump(host.file('etc/containerd/config.toml'))), EXPECTED_KEYS);
  });

  test('containerd 1.x without a config.toml: creates a version 2 one, and revert removes it', async () => {
    // Given a node where containerd runs on its defaults
    const host = await node('containerd://1.7.27', { 'etc/containerd/.keep': '' });
    // When
    const r = await host.installer('install');
    // Then
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await host.read('etc/containerd/config.toml'),
      `version = 2\n\n# Added by krun runtime install kontain; krun runtime uninstall kontain restores the backup.\n${KRUN_TABLE_V2}`,
    );
    assert.deepEqual(krunTable(await dump(host.file('etc/containerd/config.toml'))), EXPECTED_KEYS);
    // When reverting
    assert.equal((await host.installer('revert')).code, 0);
    // Then
    assert.equal(existsSync(host.file('etc/containerd/config.toml')), false);
    assert.equal(existsSync(host.file('etc/containerd/config.toml.krun-kontain.absent')), false);
  });

  test('containerd drop-in: adds the import to a config (existing imports or none), which containerd merges', async () => {
    // Given containerd 2.x nodes whose config.toml is still version 2 (containerd 2 reads it; containerd 1.6 can check it)
    const withImports = `version = 2\nimports = ["/etc/containerd/other.toml"]\n\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.9"\n`;
    for (const [original, expected] of [
      [withImports, withImports.replace('imports = [', 'imports = ["config.d/krun-kontain.toml", ')],
      [CONFIG_V2, CONFIG_V2.replace('version = 2\n', 'version = 2\nimports = ["config.d/krun-kontain.toml"]\n')],
    ] as const) {
      const host = await node('containerd://2.0.5', { 'etc/containerd/config.toml': original });
      // When
      const r = await host.installer('install');
      // Then the drop-in is written, the main config imports it, and containerd merges the two
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        await host.read('etc/containerd/config.d/krun-kontain.toml'),
        `# Written by krun runtime install kontain; removed by krun runtime uninstall kontain.\nversion = 2\n\n${KRUN_TABLE_V2}`,
      );
      assert.equal(await host.read('etc/containerd/config.toml'), expected);
      const config = host.file('etc/containerd/config.toml');
      if (original === CONFIG_V2) assert.deepEqual(krunTable(await dump(config)), EXPECTED_KEYS);
      // and a second install changes nothing
      assert.equal((await host.installer('install')).code, 0);
      assert.equal(await host.read('etc/containerd/config.toml'), expected);
      // When reverting
      assert.equal((await host.installer('revert')).code, 0);
      // Then
      assert.equal(await host.read('etc/containerd/config.toml'), original);
      assert.equal(existsSync(host.file('etc/containerd/config.d/krun-kontain.toml')), false);
    }
  });

  test('containerd 2.x drop-in in a version 3 config (structure only: no containerd 2 in Debian 12)', async () => {
    // Given a containerd 2.1 config, and a 2.2 one that already imports conf.d
    const v3 = 'version = 3\n\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "overlayfs"\n';
    const host = await node('containerd://2.1.4', { 'etc/containerd/config.toml': v3 });
    const confd = 'version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n';
    const host22 = await node('containerd://2.2.2', { 'etc/containerd/config.toml': confd });
    // When
    assert.equal((await host.installer('install')).code, 0);
    assert.equal((await host22.installer('install')).code, 0);
    // Then the v3 plugin id is used and the import added; the 2.2 config is left as it was
    const v3Table = KRUN_TABLE_V2.replace('"io.containerd.grpc.v1.cri"', '"io.containerd.cri.v1.runtime"');
    const header =
      '# Written by krun runtime install kontain; removed by krun runtime uninstall kontain.\nversion = 3\n\n';
    assert.equal(await host.read('etc/containerd/config.d/krun-kontain.toml'), `${header}${v3Table}`);
    assert.equal(
      await host.read('etc/containerd/config.toml'),
      v3.replace('version = 3\n', 'version = 3\nimports = ["config.d/krun-kontain.toml"]\n'),
    );
    assert.equal(await host22.read('etc/containerd/conf.d/krun-kontain.toml'), `${header}${v3Table}`);
    assert.equal(await host22.read('etc/containerd/config.toml'), confd);
    assert.equal(await host22.restarts(), 'restart containerd\n');
  });

  test('CRI-O: writes a crio.conf.d file, leaves the others alone, and revert removes it', async () => {
    // Given a CRI-O node with its own drop-in
    const host = await node('cri-o://1.30.4', {
      'etc/crio/crio.conf.d/10-crun.conf': '[crio.runtime]\ndefault_runtime = "crun"\n',
    });
    // When
    const r = await host.installer('install');
    // Then
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await host.read('etc/crio/crio.conf.d/99-krun-kontain.conf'),
      '# Written by krun runtime install kontain; removed by krun runtime uninstall kontain\n[crio.runtime.runtimes.krun]\nruntime_path = "/opt/kontain/bin/krun"\nruntime_type = "oci"\nruntime_root = "/run/krun"\n',
    );
    assert.equal(await host.restarts(), 'restart crio\n');
    // When reverting
    assert.equal((await host.installer('revert')).code, 0);
    // Then
    assert.equal(existsSync(host.file('etc/crio/crio.conf.d/99-krun-kontain.conf')), false);
    assert.equal(await host.read('etc/crio/crio.conf.d/10-crun.conf'), '[crio.runtime]\ndefault_runtime = "crun"\n');
    assert.equal(await host.restarts(), 'restart crio\nrestart crio\n');
  });

  test('a missing artifact fails before the config is touched or anything restarted', async () => {
    // Given a node and an artifact image without the shim
    const host = await node('containerd://1.7.27', { 'etc/containerd/config.toml': CONFIG_V2 });
    await rm(join(dirname(host.root), 'artifacts/shim'), { recursive: true });
    // When
    const r = await host.installer('install');
    // Then
    assert.equal(r.code, 1);
    assert.match(r.stderr, /krun-installer: error: artifact .*\/artifacts\/shim\/containerd-shim-krun-v2 is missing/);
    assert.equal(await host.read('etc/containerd/config.toml'), CONFIG_V2);
    assert.equal(await host.restarts(), '');
  });
});
