// `krun port-forward` end to end: HTTP traffic to an app behind a real `krun run` deployed as a Cloud Run service,
// through the emulated front end, surviving a restart of the krun instance; kubectl's "Forwarding from" lines.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, get as httpGet } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startKrunSsh } from '../ssh/support.ts';
import { spawnKrun } from '../support/cli.ts';
import { deploy, OPERATOR, operator, stopInstance, world } from './support.ts';

const w = await world('port-forward');
const op = await operator(w);
let generation = 1;
const app = createServer((req, res) => res.end(`app ${generation} ${req.url}`));
app.listen(0, '127.0.0.1');
await once(app, 'listening');
const appPort = (app.address() as AddressInfo).port;
w.cleanup(async () => {
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
});
const env = { SSH_AUTH: op.pub, PORT_web: String(appPort) };
const svc = await deploy(w, 'web', env, { invoker: OPERATOR });

/** Waits for `count` lines on port-forward's stdout ("Forwarding from …"). */
function forwardingLines(pf: ReturnType<typeof spawnKrun>, count: number): Promise<string[]> {
  return new Promise<string[]>((resolve, reject) => {
    const check = () => {
      const l = pf.stdout().split('\n').filter(Boolean);
      if (l.length >= count) resolve(l);
      else if (pf.child.exitCode !== null || pf.child.signalCode !== null) {
        reject(new Error(`port-forward exited ${pf.child.exitCode ?? pf.child.signalCode}: ${pf.stderr()}`));
      } else setTimeout(check, 50);
    };
    check();
  });
}

const localPort = (line: string) => Number(/:(\d+) ->/.exec(line)?.[1]);

test('64 concurrent local connections are streams of one HTTP/2 connection to the front end', async () => {
  // Given port-forward to the app, and the TLS connections the Cloud Run front end has accepted so far
  const pf = spawnKrun(['port-forward', 'web', `:${appPort}`], { cleanEnv: op.env });
  try {
    const port = localPort((await forwardingLines(pf, 1))[0] as string);
    const before = w.gcp.frontEnd.connectionsAccepted();
    // When 64 requests go through at once, each on its own local TCP connection
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        httpGet({ host: '127.0.0.1', port, path, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
    const bodies = await Promise.all(Array.from({ length: 64 }, (_, i) => get(`/c${i}`)));
    // Then each got the app's answer
    assert.deepEqual(
      bodies,
      Array.from({ length: 64 }, (_, i) => `app ${generation} /c${i}`),
    );
    // And the front end accepted exactly one more TLS connection: the 64 tunnels were its streams
    assert.equal(w.gcp.frontEnd.connectionsAccepted() - before, 1);
  } finally {
    pf.child.kill('SIGINT');
  }
  assert.equal((await pf.exited).status, 130);
});

test('port-forward carries HTTP to the app and survives a restart of the instance', async () => {
  // Given krun port-forward to the app's port and to its name, on any free local ports
  const pf = spawnKrun(['port-forward', 'web', `:${appPort}`, ':web', '--log-format', 'human'], {
    cleanEnv: op.env,
  });
  try {
    const lines = await forwardingLines(pf, 2);
    // Then stdout has kubectl's lines, one per port
    assert.equal(lines.length, 2);
    assert.match(lines[0] as string, new RegExp(`^Forwarding from 127\\.0\\.0\\.1:\\d+ -> ${appPort}$`));
    assert.match(lines[1] as string, /^Forwarding from 127\.0\.0\.1:\d+ -> web$/);
    const [byPort, byName] = lines.map(localPort);
    // When 20 requests go through each at once
    const get = async (port: number, path: string) =>
      (
        await fetch(`http://127.0.0.1:${port}${path}`).catch((e: Error) => {
          throw new Error(`${e.message} ${(e.cause as Error)?.message}: ${pf.stderr()}`);
        })
      ).text();
    const bodies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => get(i % 2 ? (byPort as number) : (byName as number), `/r${i}`)),
    );
    // Then each got the app's answer
    assert.deepEqual(
      bodies,
      Array.from({ length: 20 }, (_, i) => `app 1 /r${i}`),
    );
    // When the krun instance restarts (same port behind the front end) while a request is on its way
    await svc.instance.stop();
    generation = 2;
    const pending = get(byName as number, '/after-restart');
    const again = await startKrunSsh(svc.dir, { ...env, KRUN_HBONE_PORT: `127.0.0.1:${svc.instance.hbonePort}` });
    w.cleanup(() => stopInstance(again));
    // Then the request waits for the tunnel and gets through, and new ones too
    assert.equal(await pending, 'app 2 /after-restart');
    assert.equal(await get(byPort as number, '/next'), 'app 2 /next');
    assert.match(pf.stderr(), /the tunnel is down .*; waiting for it to come back/);
  } finally {
    pf.child.kill('SIGINT');
  }
  // And SIGINT ends it with 130
  const r = await pf.exited;
  assert.equal(r.status, 130);
});
