// The SSH debug server's cost against the raw HBONE tunnel it rides on, measured in the same run (interleaved
// rounds, medians), both through `krun hbone` to one `krun run` (standalone, built CLI):
// - round trip: `ssh … true` (ssh's handshake, login and an exec) against `krun hbone` to an echo target (one byte
//   there and back), each a fresh client process;
// - throughput: `scp` of a 256 MiB file (up, then back down) against piping the same file through `krun hbone` to a discard target.
// Needs `npm run build` and the OpenSSH client (ssh, scp, ssh-keygen).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { opensshOptions } from '../test/ssh/support.ts';
import { listen } from './support/tcp.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TRIPS = Number(process.env.BENCH_TRIPS ?? 10);
const FILE_MB = Number(process.env.BENCH_FILE_MB ?? 256);
// BENCH_SSH_CIPHER=aes128-ctr (say) makes ssh and scp ask for that cipher instead of the negotiated one.
const CIPHER = process.env.BENCH_SSH_CIPHER ? ['-c', process.env.BENCH_SSH_CIPHER] : [];
const BIN = new URL('../bin/run.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'krun-bench-ssh-'));

function must(file: string, args: string[]): void {
  const r = spawnSync(file, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

const port = (s: Server) => (s.address() as AddressInfo).port;

/** Runs a program to completion; stdin from a file or a buffer; resolves with stdout; rejects on failure. */
function exec(file: string, args: string[], input: { path?: string; bytes?: Buffer } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) =>
      status === 0
        ? resolve(Buffer.concat(out))
        : reject(new Error(`${file} exited ${status}: ${Buffer.concat(err).toString('utf8')}`)),
    );
    if (input.path) createReadStream(input.path).pipe(child.stdin);
    else child.stdin.end(input.bytes);
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

// Targets: an echo server and a sink that discards everything and answers one byte once the sender half-closes.
const echo = await listen((s) => s.pipe(s));
const sink = await listen((s) => {
  s.on('data', () => {});
  s.on('end', () => s.end('k'));
});
const [hbonePort, sshPort] = await Promise.all(
  [0, 1].map(async () => {
    const s = await listen(() => {});
    const p = port(s);
    await new Promise((r) => s.close(r));
    return p;
  }),
);

must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]);
const pod = join(dir, 'pod');
const krun = spawn(process.execPath, [BIN, 'run'], {
  cwd: dir,
  stdio: ['ignore', 'ignore', 'pipe'],
  env: {
    PATH: process.env.PATH,
    HOME: dir,
    CI: 'true',
    MESH_BASE_DIR: pod,
    PORT_http: '-',
    KRUN_HBONE_PORT: `127.0.0.1:${hbonePort}`,
    KRUN_SSH_PORT: String(sshPort),
    PORT_ssh: String(sshPort),
    PORT_echo: String(port(echo)),
    PORT_sink: String(port(sink)),
    SSH_AUTH: readFileSync(join(dir, 'id.pub'), 'utf8'),
  },
});
let log = '';
await new Promise<void>((resolve, reject) => {
  krun.stderr.on('data', (c: Buffer) => {
    log += c.toString('utf8');
    if (log.includes('SSH debug server listening') && log.includes('HBONE listening')) resolve();
  });
  krun.once('exit', (code) => reject(new Error(`krun run exited ${code}:\n${log}`)));
});

const url = (name: string) => `http://127.0.0.1:${hbonePort}/_hbone/${name}`;
const hbone = (name: string) => [BIN, 'hbone', url(name)];
const sshOpts = [
  ...opensshOptions(`${process.execPath} ${BIN} hbone ${url('ssh')}`, join(dir, 'known_hosts')),
  '-i',
  join(dir, 'id'),
  ...CIPHER,
];
const file = join(dir, 'payload.bin');
writeFileSync(file, Buffer.alloc(FILE_MB * 1024 * 1024, 0x5a));
const bytes = statSync(file).size;

interface Case {
  readonly name: string;
  readonly times: number;
  readonly run: () => Promise<unknown>;
  readonly ms: number[];
}
const cases: Case[] = [
  { name: 'rawRtt', times: TRIPS, run: () => exec(process.execPath, hbone('echo'), { bytes: Buffer.from('p') }) },
  { name: 'sshRtt', times: TRIPS, run: () => exec('ssh', [...sshOpts, 'root@krun', 'true']) },
  { name: 'rawBulk', times: 1, run: () => exec(process.execPath, hbone('sink'), { path: file }) },
  { name: 'scpBulk', times: 1, run: () => exec('scp', [...sshOpts, file, `root@krun:${join(pod, 'copy.bin')}`]) },
  // Back down: the server's sends and `krun hbone`'s stdout writes (after scpBulk, which made the copy).
  {
    name: 'scpDown',
    times: 1,
    run: () => exec('scp', [...sshOpts, `root@krun:${join(pod, 'copy.bin')}`, join(dir, 'down.bin')]),
  },
].map((c) => ({ ...c, ms: [] }));
const ms = (name: string) => median(cases.find((c) => c.name === name)?.ms ?? []);

try {
  for (const c of cases) await c.run(); // warm-up (and the known_hosts entry)
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) for (let i = 0; i < c.times; i++) c.ms.push(await timed(c.run));
  }
  if (statSync(join(pod, 'copy.bin')).size !== bytes) throw new Error('scp copied the wrong number of bytes');
  const mbps = (name: string) => bytes / 1e6 / (ms(name) / 1000);
  if (statSync(join(dir, 'down.bin')).size !== bytes) throw new Error('scp copied the wrong number of bytes back');
  const [rawRtt, sshRtt, rawTp, scpTp] = [ms('rawRtt'), ms('sshRtt'), mbps('rawBulk'), mbps('scpBulk')];
  process.stdout.write(
    `node ${process.version}, ${ROUNDS} rounds (medians; ${TRIPS} round trips per round), each a fresh client process\n`,
  );
  process.stdout.write(`round trip   krun hbone→echo ${rawRtt.toFixed(0)} ms   ssh … true ${sshRtt.toFixed(0)} ms   `);
  process.stdout.write(`ratio ${(sshRtt / rawRtt).toFixed(2)}x\n`);
  process.stdout.write(
    `throughput (${FILE_MB} MiB)   krun hbone→discard ${rawTp.toFixed(0)} MB/s   scp ${scpTp.toFixed(0)} MB/s   `,
  );
  process.stdout.write(`ratio ${(scpTp / rawTp).toFixed(2)}\n`);
  const downTp = mbps('scpDown');
  process.stdout.write(`scp back down ${downTp.toFixed(0)} MB/s   ratio ${(downTp / rawTp).toFixed(2)}\n`);
} finally {
  krun.kill('SIGTERM');
  await once(krun, 'exit');
  for (const s of [echo, sink]) s.close();
  rmSync(dir, { recursive: true, force: true });
}
