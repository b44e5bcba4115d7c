// HBONE tunnel cost against plain TCP on loopback, measured in the same run (interleaved rounds, medians): bulk
// throughput on one stream and on 8 parallel streams, and the round-trip latency of 1-byte ping-pongs. Everything
// runs in this process (server, targets, client), so the ratios include the tunnel's CPU cost on the same cores.
import { once } from 'node:events';
import { type AddressInfo, connect, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HboneClient } from '../src/lib/hbone/client.ts';
import { startHboneServer } from '../src/lib/hbone/server.ts';
import { TargetTable } from '../src/lib/hbone/targets.ts';
import { noToken } from '../src/lib/hbone/token.ts';
import { silentLogger } from '../src/lib/log/logger.ts';
import { listen } from './support/tcp.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BULK_MB = Number(process.env.BENCH_BULK_MB ?? 256);
const PARALLEL = 8;
const PINGS = Number(process.env.BENCH_PINGS ?? 2000);
const CHUNK = Buffer.alloc(64 * 1024, 0x5a);

/** Discards everything, then answers one byte once the sender half-closes. */
const sink = (socket: Socket) => {
  socket.on('data', () => {});
  socket.on('end', () => socket.end('k'));
};
const echo = (socket: Socket) => {
  socket.setNoDelay(true);
  socket.pipe(socket);
};

type Open = () => Promise<Duplex>;

async function sendBulk(open: Open, bytes: number): Promise<void> {
  const stream = await open();
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', () => {});
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  let sent = 0;
  while (sent < bytes) {
    if (!stream.write(CHUNK)) await once(stream, 'drain');
    sent += CHUNK.length;
  }
  stream.end();
  await done;
}

/** MB/s moving `total` bytes split over `streams` concurrent streams. */
async function throughput(open: Open, total: number, streams: number): Promise<number> {
  const start = performance.now();
  await Promise.all(Array.from({ length: streams }, () => sendBulk(open, total / streams)));
  return total / 1e6 / ((performance.now() - start) / 1000);
}

/** Median microseconds for a 1-byte round trip. */
async function roundTrip(open: Open): Promise<number> {
  const stream = await open();
  const samples: number[] = [];
  const one = Buffer.from('p');
  for (let i = 0; i < PINGS; i++) {
    const start = performance.now();
    const got = once(stream, 'data');
    stream.write(one);
    await got;
    samples.push((performance.now() - start) * 1000);
  }
  stream.end();
  stream.resume();
  return median(samples);
}

function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
}

const sinkServer = await listen(sink);
const echoServer = await listen(echo);
const port = (s: Server) => (s.address() as AddressInfo).port;
const hbone = await startHboneServer({
  listen: { host: '127.0.0.1', port: 0 },
  targets: new TargetTable({ named: { sink: String(port(sinkServer)), echo: String(port(echoServer)) } }),
  log: silentLogger,
});
const client = new HboneClient({ origin: new URL(hbone.url), tokens: noToken, log: silentLogger, transport: 'h2' });

const tcp =
  (p: number): Open =>
  async () => {
    const socket = connect({ host: '127.0.0.1', port: p, allowHalfOpen: true, noDelay: true });
    await once(socket, 'connect');
    return socket;
  };
const tunnel =
  (name: string): Open =>
  async () =>
    (await client.open(name)).stream;

const total = BULK_MB * 1024 * 1024;
const results: Record<string, { tcp: number[]; hbone: number[] }> = {
  'bulk, 1 stream (MB/s)': { tcp: [], hbone: [] },
  [`bulk, ${PARALLEL} streams (MB/s)`]: { tcp: [], hbone: [] },
  'round trip (µs)': { tcp: [], hbone: [] },
};
await throughput(tunnel('sink'), 16 * 1024 * 1024, 1); // warm up JIT and the HTTP/2 connection
for (let round = 0; round < ROUNDS; round++) {
  const [one, many, rtt] = Object.values(results) as [
    (typeof results)[string],
    (typeof results)[string],
    (typeof results)[string],
  ];
  one.tcp.push(await throughput(tcp(port(sinkServer)), total, 1));
  one.hbone.push(await throughput(tunnel('sink'), total, 1));
  many.tcp.push(await throughput(tcp(port(sinkServer)), total, PARALLEL));
  many.hbone.push(await throughput(tunnel('sink'), total, PARALLEL));
  rtt.tcp.push(await roundTrip(tcp(port(echoServer))));
  rtt.hbone.push(await roundTrip(tunnel('echo')));
}

process.stdout.write(
  `node ${process.version}, ${ROUNDS} rounds (median), ${BULK_MB} MiB per bulk run, ${PINGS} pings per round trip run\n`,
);
process.stdout.write(`${'measure'.padEnd(26)} ${'plain TCP'.padStart(10)} ${'HBONE h2c'.padStart(10)}  ratio\n`);
for (const [name, { tcp: t, hbone: h }] of Object.entries(results)) {
  const a = median(t);
  const b = median(h);
  const extra = name.startsWith('round trip') ? `  (+${(b - a).toFixed(0)} µs added)` : '';
  process.stdout.write(
    `${name.padEnd(26)} ${a.toFixed(0).padStart(10)} ${b.toFixed(0).padStart(10)}  ${(b / a).toFixed(2)}x${extra}\n`,
  );
}
client.close();
await hbone.close();
sinkServer.close();
echoServer.close();
