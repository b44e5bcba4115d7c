// The ustar archives krun streams to the Pod's init container, checked by the system's GNU tar (the format is
// what matters; the Pod runs busybox tar), and the large-mount Pod layout that uses them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MAX_CONFIGMAP_BYTES } from '../../src/lib/fn/mounts.ts';
import { buildObjects } from '../../src/lib/fn/objects.ts';
import { tarStream } from '../../src/lib/fn/tar.ts';

const TAR = '/usr/bin/tar';

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('the mount archive', () => {
  test('GNU tar extracts exactly the files, directories, contents and modes', async () => {
    assert.ok(existsSync(TAR), `${TAR} is needed to check the archive format: apt-get install tar`);
    const dir = mkdtempSync(join(tmpdir(), 'krun-fn-tar-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const src = join(dir, 'src');
    const longDir = `${'d'.repeat(90)}/${'e'.repeat(60)}`;
    mkdirSync(join(src, longDir), { recursive: true });
    writeFileSync(join(src, 'big.bin'), Buffer.alloc(MAX_CONFIGMAP_BYTES + 1000, 7));
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(src, longDir, 'deep.txt'), 'deep\n');
    const spec = {
      image: 'img',
      args: [],
      env: [],
      denyNetwork: true,
      user: { uid: 65534, gid: 65534 },
      mounts: [{ source: src, target: '/data', readOnly: true }],
      pull: 'IfNotPresent' as const,
      stdin: true,
    };
    const settings = { timeoutMs: 60_000, cpu: '1', memory: '1Gi', helperImage: 'busybox:1.37' };
    const objects = await buildObjects(spec, settings, 'ns', 'krun-fn-0000000000');
    // Too big for a ConfigMap: an emptyDir, filled by the init container, and no ConfigMap.
    assert.deepEqual(
      objects.before.map((o) => o.kind),
      ['NetworkPolicy'],
    );
    const podSpec = objects.pod.spec as { initContainers: Record<string, unknown>[]; volumes: unknown[] };
    assert.deepEqual(podSpec.volumes, [{ name: 'mount-0', emptyDir: {} }]);
    assert.equal(podSpec.initContainers[0]?.image, 'busybox:1.37');
    assert.deepEqual(podSpec.initContainers[0]?.command, ['tar', '-x', '-f', '-', '-C', '/krun-mounts']);
    assert.deepEqual(podSpec.initContainers[0]?.volumeMounts, [{ name: 'mount-0', mountPath: '/krun-mounts/0' }]);

    const archive = join(dir, 'a.tar');
    writeFileSync(archive, await collect(tarStream(objects.archive)));
    const out = join(dir, 'out');
    mkdirSync(out);
    const r = spawnSync(TAR, ['-x', '-f', archive, '-C', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readFileSync(join(out, '0', 'big.bin')), readFileSync(join(src, 'big.bin')));
    assert.equal(readFileSync(join(out, '0', longDir, 'deep.txt'), 'utf8'), 'deep\n');
    assert.equal(statSync(join(out, '0', 'run.sh')).mode & 0o777, 0o755);
    const listing = spawnSync(TAR, ['-t', '-f', archive], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    assert.deepEqual(listing, [
      '0/big.bin',
      `0/${'d'.repeat(90)}/`,
      `0/${longDir}/`,
      `0/${longDir}/deep.txt`,
      '0/run.sh',
    ]);
  });
});
