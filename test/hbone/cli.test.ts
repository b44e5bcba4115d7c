// `krun hbone` as users run it (the built bin/run.js in a real process): stdin/stdout as the tunnel for OpenSSH's
// ProxyCommand, -L forwarding, exit statuses, Google ID tokens through the emulated Cloud Run front end, and the
// WebSocket fallback when the front end does not carry HTTP/2 to the container.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type HboneServer, startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { silentLogger } from '../../src/lib/log/logger.ts';
import { BIN, krun } from '../support/cli.ts';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { collect, echo, random, startTarget, type Target, writeAll } from './support.ts';

describe('krun hbone', () => {
  let target: Target;
  let server: HboneServer;
  let gcp: GcpEmulator;
  let h2Url: string;
  let h1Url: string;
  let deniedUrl: string;

  before(async () => {
    target = await startTarget(echo);
    server = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({ sshPort: null, named: { echo: String(target.port) } }),
      log: silentLogger,
    });
    gcp = await startGcpEmulator();
    const backendPort = server.address.port;
    const invoker = gcp.metadata.serviceAccount;
    const add = (name: string, http2: boolean, grant: boolean): string => {
      const service = gcp.state.addRunService({ name, backendPort, http2 });
      if (grant) gcp.state.grant(gcp.state.runServiceName(service), 'roles/run.invoker', invoker);
      return gcp.state.runServiceUrls(service)[0] ?? '';
    };
    h2Url = add('tunnel-h2', true, true);
    h1Url = add('tunnel-h1', false, true);
    deniedUrl = add('tunnel-denied', true, false);
  });
  after(async () => {
    await server.close();
    await target.close();
    await gcp.stop();
  });

  const direct = (name: string) => `${server.url}/_hbone/${name}`;

  test('stdin/stdout are the tunnel: random bytes come back exactly, exit 0, nothing else on stdout', async () => {
    // Given 2 MiB of random bytes on stdin and debug logging on
    const data = random(2 * 1024 * 1024 + 11);
    // When they go through the tunnel to an echo target (as an OpenSSH ProxyCommand would send them)
    const r = await runBinary(['hbone', '-v', direct('echo')], data);
    // Then stdout carries exactly those bytes and the logs went to stderr
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Buffer.compare(r.stdout, data), 0);
    assert.match(r.stderr, /tunnel open/);
  });

  test('an unknown target exits 255 with the reason on stderr and nothing on stdout', async () => {
    const r = await krun(['hbone', direct('nope')], { input: 'ignored' });
    assert.equal(r.status, 255);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: no tunnel target "nope" at http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)\n/);
  });

  test('a server that is not there exits 255', async () => {
    const gone = await startTarget(echo);
    await gone.close();
    const r = await krun(['hbone', `http://127.0.0.1:${gone.port}/_hbone/22`], { input: '' });
    assert.equal(r.status, 255);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /can't connect to http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/);
  });

  test('a URL without a target is a usage error', async () => {
    const r = await krun(['hbone', server.url], { input: '' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /names no tunnel target/);
  });

  test('through the Cloud Run front end with a Google ID token from the metadata server', async () => {
    // Given a service deployed with --use-http2 whose invoker is the metadata server's service account
    const data = random(512 * 1024 + 3);
    // When krun hbone tunnels to it by its public URL
    const r = await runBinary(['hbone', `${h2Url}/_hbone/echo`], data, gcp.env());
    // Then the bytes come back exactly over HTTP/2
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Buffer.compare(r.stdout, data), 0);
    assert.doesNotMatch(r.stderr, /WebSocket/);
  });

  test('a caller without run.invoker is rejected by the front end: exit 255, 403 on stderr', async () => {
    const r = await runBinary(['hbone', `${deniedUrl}/_hbone/echo`], Buffer.from('x'), gcp.env());
    assert.equal(r.status, 255);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr.toString(), /permission denied .*\(HTTP 403\)/);
  });

  test('without HTTP/2 to the container, the tunnel falls back to WebSocket and says so', async () => {
    // Given a service deployed without --use-http2 (the front end speaks HTTP/1.1 to the container)
    const data = random(300 * 1024 + 9);
    // When krun hbone tunnels to it
    const r = await runBinary(['hbone', '--log-format', 'human', `${h1Url}/_hbone/echo`], data, gcp.env());
    // Then the bytes still come back exactly, and stderr announced the fallback
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Buffer.compare(r.stdout, data), 0);
    assert.match(r.stderr, /^warn: .*HTTP 426.*; falling back to WebSocket/m);
  });

  test('-L forwards many local connections over one HTTP/2 connection; SIGINT ends it with 130', async () => {
    // Given krun hbone -L on an ephemeral port
    const child = spawn(
      process.execPath,
      [BIN, 'hbone', '--log-format', 'human', '-L', '127.0.0.1:0:echo', server.url],
      {
        env: { ...process.env, CI: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const stdout = collect(child.stdout);
    let stderr = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`krun hbone -L exited with ${code}: ${stderr}`)));
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const m = /Forwarding from 127\.0\.0\.1:(\d+) -> echo/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
    });
    const connectionsBefore = server.acceptedConnections;
    // When 10 local connections send different bytes at the same time
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        await once(socket, 'connect');
        const data = random(100 * 1024 + i);
        const [, back] = await Promise.all([writeAll(socket, data), collect(socket)]);
        return Buffer.compare(back, data);
      }),
    );
    // Then each got its own bytes back, over a single connection to the server
    assert.deepEqual(results, Array(10).fill(0));
    assert.equal(server.acceptedConnections - connectionsBefore, 1);
    // And SIGINT stops it with 130 and an empty stdout
    child.kill('SIGINT');
    const [status] = (await once(child, 'exit')) as [number];
    assert.equal(status, 130);
    assert.equal((await stdout).length, 0);
  });

  test('a killed client leaves no tunnel or target connection behind on the server', async () => {
    // Given a krun hbone process with an open tunnel (its first bytes have made the round trip)
    const accepted = target.accepted.length;
    const child = spawn(process.execPath, [BIN, 'hbone', direct('echo')], {
      env: { ...process.env, CI: 'true' },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    child.stdin.write('ping');
    const [first] = (await once(child.stdout, 'data')) as [Buffer];
    assert.equal(first.toString(), 'ping');
    assert.equal(server.openTunnels, 1);
    // When it is killed without a chance to close anything
    child.kill('SIGKILL');
    await once(child, 'exit');
    // Then the server tears the tunnel down and closes its connection to the target
    await server.whenIdle();
    await Promise.all(target.accepted.slice(accepted).map((s) => (s.closed ? undefined : once(s, 'close'))));
    assert.equal(server.openTunnels, 0);
    assert.ok(target.accepted.slice(accepted).every((s) => s.closed));
  });
});

interface BinaryResult {
  readonly status: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Runs the built CLI with binary stdin, keeping stdout as bytes. */
async function runBinary(
  args: readonly string[],
  input: Buffer,
  env: Record<string, string> = {},
): Promise<BinaryResult> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, CI: 'true', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  child.stdin.on('error', () => {});
  await writeAll(child.stdin, input);
  const [status] = (await once(child, 'exit')) as [number | null];
  return { status, stdout: await stdout, stderr: (await stderr).toString() };
}
