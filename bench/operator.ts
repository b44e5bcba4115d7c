// The operator commands' cost against direct loopback, measured in the same run (interleaved rounds, medians), through
// the whole path: the built CLI, a Google ID token from the emulated metadata server, the emulated Cloud Run front
// end (TLS, HTTP/2, IAM check; it runs in this process) and a real `krun run` (standalone) behind it.
// - `krun cp` of a large file up to the service and back (SFTP over one tunnel; the whole command, start-up, name
//   resolution and ID token included), against streaming the same file over plain TCP on loopback into a file;
// - `krun port-forward` to an HTTP app with 64 concurrent connections: requests per second on 64 keep-alive
//   connections, and with a new connection (so a new tunnel) per request, against the same load sent to the app
//   directly.
// Needs `npm run build` and ssh-keygen.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, createServer as createHttpServer, get } from 'node:http';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPERATOR, operatorEnv, operatorGcp } from '../test/operator/support.ts';
import { keygen, startKrunSsh } from '../test/ssh/support.ts';
import { BIN, spawnKrun } from '../test/support/cli.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FILE_MB = Number(process.env.BENCH_FILE_MB ?? 128);
const CONNECTIONS = 64;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3200);

const dir = mkdtempSync(join(tmpdir(), 'krun-bench-operator-'));
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const port = (s: Server | ReturnType<typeof createHttpServer>) => (s.address() as AddressInfo).port;

// The Google Cloud side: the operator may view services and invoke this one.
const gcp = await operatorGcp();
const key = await keygen(dir, 'id_ed25519');
const app = createHttpServer((req, res) => res.end(`ok ${req.url}`));
app.listen(0, '127.0.0.1');
await once(app, 'listening');
const pod = join(dir, 'pod');
const instance = await startKrunSsh(pod, { SSH_AUTH: key.pub, PORT_web: String(port(app)) });
const service = gcp.state.addRunService({ name: 'bench', backendPort: instance.hbonePort, http2: true });
gcp.state.grant(gcp.state.runServiceName(service), 'roles/run.invoker', OPERATOR);
const env = operatorEnv(gcp, dir);
const sshArgs = ['-i', key.path, '--known-hosts', join(dir, 'known_hosts')];

function krunCp(src: string, dst: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'cp', ...sshArgs, src, dst], {
      env: { ...env, CI: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`krun cp exited ${status}: ${err}`))));
  });
}

// Direct loopback: the file over plain TCP into a file, acknowledged once written.
const receiver = createServer((socket) => {
  const out = createWriteStream(join(dir, 'tcp-copy.bin'));
  socket.pipe(out);
  out.on('finish', () => socket.end('k'));
});
receiver.listen(0, '127.0.0.1');
await once(receiver, 'listening');
async function tcpCopy(file: string): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port: port(receiver) });
  await once(socket, 'connect');
  const done = once(socket, 'end');
  socket.resume();
  createReadStream(file).pipe(socket);
  await done;
}

/** Requests per second: REQUESTS GETs over CONNECTIONS concurrent connections (kept alive, or one per request). */
async function requestRate(target: number, keepAlive: boolean): Promise<number> {
  const agent = new Agent({ keepAlive, maxSockets: CONNECTIONS });
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      get({ host: '127.0.0.1', port: target, path: `/r${i}`, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (body === `ok /r${i}` ? resolve() : reject(new Error(`unexpected answer ${body}`))));
      }).on('error', reject);
    });
  const worker = async () => {
    while (next < REQUESTS) await one(next++);
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const rate = REQUESTS / ((performance.now() - start) / 1000);
  agent.destroy();
  return rate;
}

const file = join(dir, 'payload.bin');
writeFileSync(file, Buffer.alloc(FILE_MB * 1024 * 1024, 0x5a));
const bytes = statSync(file).size;
const forward = spawnKrun(['port-forward', 'bench', `:${port(app)}`], { cleanEnv: env });
try {
  const local = await new Promise<number>((resolve, reject) => {
    forward.child.once('exit', (code) => reject(new Error(`port-forward exited ${code}: ${forward.stderr()}`)));
    const check = () => {
      const p = /127\.0\.0\.1:(\d+) ->/.exec(forward.stdout())?.[1];
      if (p) resolve(Number(p));
      else setTimeout(check, 50);
    };
    check();
  });
  const series = () => ({ direct: [] as number[], krun: [] as number[] });
  const [up, down, kept, fresh] = [series(), series(), series(), series()];
  const rows = [
    [`cp ${FILE_MB} MiB up (MB/s)`, up],
    [`cp ${FILE_MB} MiB down (MB/s)`, down],
    [`${CONNECTIONS} keep-alive conns (req/s)`, kept],
    [`${CONNECTIONS} conns, new per req (req/s)`, fresh],
  ] as const;
  const remote = `bench:${join(pod, 'copy.bin')}`;
  const back = join(dir, 'back.bin');
  const mbps = async (fn: () => Promise<void>) => {
    const start = performance.now();
    await fn();
    return bytes / 1e6 / ((performance.now() - start) / 1000);
  };
  // Warm-up: the host key pin, the tunnel's HTTP/2 connection, the JIT.
  await krunCp(file, remote);
  await requestRate(local, true);
  for (let round = 0; round < ROUNDS; round++) {
    up.direct.push(await mbps(() => tcpCopy(file)));
    up.krun.push(await mbps(() => krunCp(file, remote)));
    down.direct.push(await mbps(() => tcpCopy(file)));
    down.krun.push(await mbps(() => krunCp(remote, back)));
    kept.direct.push(await requestRate(port(app), true));
    kept.krun.push(await requestRate(local, true));
    fresh.direct.push(await requestRate(port(app), false));
    fresh.krun.push(await requestRate(local, false));
  }
  for (const copy of [join(pod, 'copy.bin'), back]) {
    if (statSync(copy).size !== bytes) throw new Error(`krun cp copied the wrong number of bytes to ${copy}`);
  }
  process.stdout.write(
    `node ${process.version}, ${ROUNDS} rounds (median); krun through the emulated Cloud Run front end; ` +
      `${REQUESTS} requests per rate run\n`,
  );
  process.stdout.write(`${'measure'.padEnd(34)} ${'direct'.padStart(8)} ${'krun'.padStart(8)}  ratio\n`);
  for (const [name, { direct, krun }] of rows) {
    const a = median(direct);
    const b = median(krun);
    process.stdout.write(
      `${name.padEnd(34)} ${a.toFixed(0).padStart(8)} ${b.toFixed(0).padStart(8)}  ${(b / a).toFixed(2)}x\n`,
    );
  }
} finally {
  forward.child.kill('SIGINT');
  await forward.exited;
  await instance.stop();
  await gcp.stop();
  receiver.close();
  app.closeAllConnections();
  app.close();
  rmSync(dir, { recursive: true, force: true });
}
