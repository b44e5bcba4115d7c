// Interoperability with a peer nobody on this project wrote: Istio's own Go HBONE client (istio.io/istio/pkg/hbone,
// built from the Go module as test/fixtures/istio/hbonepeer) CONNECTs through krun's server over HTTP/2 cleartext.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { type HboneServer, startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { ensureFixtures } from '../support/fixtures/build.ts';
import { collect, echo, memoryLogger, random, startTarget, type Target, writeAll } from './support.ts';

describe("Istio's HBONE client against krun's server", () => {
  let peer: string;
  let target: Target;
  let server: HboneServer;
  const serverLog = memoryLogger();

  before(async () => {
    peer = (await ensureFixtures()).hbonePeer;
    target = await startTarget(echo);
    server = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({ sshPort: null, named: { echo: target.address } }),
      log: serverLog.log,
    });
  });
  after(async () => {
    await server.close();
    await target.close();
  });

  async function runPeer(authority: string, input: Buffer, expect: number) {
    const child = spawn(
      peer,
      ['-proxy', `127.0.0.1:${server.address.port}`, '-target', authority, '-expect', String(expect)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    child.stdin.on('error', () => {});
    await writeAll(child.stdin, input);
    const [status] = (await once(child, 'exit')) as [number];
    return { status, stdout: await stdout, stderr: (await stderr).toString() };
  }

  test('CONNECT to an allow-listed host:port carries random bytes exactly', async () => {
    // Given 1 MiB of random bytes
    const data = random(1024 * 1024 + 7);
    // When Istio's dialer CONNECTs to the echo target's address through krun and sends them
    const r = await runPeer(target.address, data, data.length);
    // Then the same bytes come back
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Buffer.compare(r.stdout, data), 0);
  });

  test('CONNECT to an address outside the allow-list fails with 404 and is logged', async () => {
    const r = await runPeer('127.0.0.1:9', Buffer.from('x'), 1);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /round trip failed: 404 Not Found/);
    assert.ok(serverLog.lines().some((l) => l.message === 'tunnel target not allowed' && l.target === '127.0.0.1:9'));
  });
});
