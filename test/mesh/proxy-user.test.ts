// The check krun makes before starting the proxy as UID 1337: every directory on the way must let that user in, and
// the file must be readable (or runnable) by it, judged by owner, group and mode as the kernel would.
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { UsageError } from '../../src/lib/errors.ts';
import { assertReachable, PROXY_OWNER } from '../../src/lib/mesh/proxy-user.ts';

const work = await mkdtemp(join(tmpdir(), 'krun-proxy-user-'));
await chmod(work, 0o755);
after(() => rm(work, { recursive: true, force: true }));

describe('assertReachable', () => {
  test('names the first directory the proxy user may not enter, and what to do', async () => {
    const dir = join(work, 'closed', 'inner');
    await mkdir(dir, { recursive: true });
    await chmod(join(work, 'closed'), 0o700);
    const file = join(dir, 'istio-token');
    await writeFile(file, 'token', { mode: 0o644 });
    await assert.rejects(assertReachable(file, PROXY_OWNER, 'the istio-token', 'read'), (err) => {
      assert.ok(err instanceof UsageError);
      assert.equal(
        err.message,
        `the istio-token ${file} is out of reach of the proxy user (UID 1337): ${join(work, 'closed')} may not be entered`,
      );
      assert.deepEqual(err.hints[0], `chmod o+x ${join(work, 'closed')}`);
      return true;
    });
  });

  test('a file readable by its group 1337 passes; one that is owner-only does not; execute is checked for binaries', async () => {
    const file = join(work, 'token');
    await writeFile(file, 'token', { mode: 0o640 });
    await chown(file, 0, 1337);
    await assertReachable(file, PROXY_OWNER, 'the istio-token', 'read');
    await chmod(file, 0o600);
    await assert.rejects(
      assertReachable(file, PROXY_OWNER, 'the istio-token', 'read'),
      new RegExp(`^UsageError: the istio-token ${file} may not be read by the proxy user \\(UID 1337\\)$`),
    );
    const binary = join(work, 'envoy');
    await writeFile(binary, '#!/bin/sh\n', { mode: 0o744 });
    await assert.rejects(assertReachable(binary, PROXY_OWNER, 'Envoy', 'execute'), /may not be run by the proxy user/);
    await chmod(binary, 0o755);
    await assertReachable(binary, PROXY_OWNER, 'Envoy', 'execute');
  });
});
