// What `krun gate` costs a mesh client against connecting to the workload's TLS port directly, measured in the same run
// (interleaved rounds, medians): new tunnels per second (TCP connect, the client's full TLS handshake with the app
// through the gate, a 1-byte exchange, close) one after another and 16 at a time, and bulk throughput of one TLS
// connection. The path is the real one minus Cloud Run's front end: TLS client → gate (SNI, connection pool) →
// HTTP/2 over TLS → krun's HBONE server → the app's TLS port. Everything runs in this process, on the same cores.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  createServer as createTlsServer,
  getCACertificates,
  setDefaultCACertificates,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls';
import { startGate } from '../src/lib/gate/gate.ts';
import { Metrics } from '../src/lib/gate/metrics.ts';
import { startHboneServer } from '../src/lib/hbone/server.ts';
import { TargetTable } from '../src/lib/hbone/targets.ts';
import { noToken } from '../src/lib/hbone/token.ts';
import { silentLogger } from '../src/lib/log/logger.ts';
import { createCertificateAuthority } from '../test/support/pki.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TUNNELS = Number(process.env.BENCH_TUNNELS ?? 300);
const BULK_MB = Number(process.env.BENCH_BULK_MB ?? 128);
const PARALLEL = 16;
const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
const HOST = 'app.bench.svc.cluster.local';
const SNI = `outbound_.8080_._.${HOST}`;

const ca = await createCertificateAuthority('bench mesh');
const appCert = await ca.issue({ commonName: HOST, hosts: [HOST], usage: 'server' });
const serviceCert = await ca.issue({ commonName: 'localhost', hosts: ['localhost'], usage: 'server' });
// The gate trusts the "Cloud Run" certificate as it trusts Google's: through the default CA list.
setDefaultCACertificates([...getCACertificates('default'), ca.certPem]);

/** The app: one byte back for every 1-byte message; for bulk, one byte once the client half-closes. */
const app = createTlsServer({ key: appCert.keyPem, cert: appCert.chainPem, allowHalfOpen: true }, (socket) => {
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    if (chunk.length === 1) socket.write(chunk);
  });
  socket.on('end', () => socket.end('k'));
});
app.listen(0, '127.0.0.1');
await once(app, 'listening');
const appPort = (app.address() as AddressInfo).port;

const hbone = await startHboneServer({
  listen: { host: '127.0.0.1', port: 0 },
  targets: new TargetTable({ named: { mesh: String(appPort) } }),
  tls: { key: serviceCert.keyPem, cert: serviceCert.chainPem },
  log: silentLogger,
});
const metrics = new Metrics();
const gate = await startGate({
  listen: { host: '127.0.0.1', port: 0 },
  resolve: async () => ({
    ok: true,
    destination: { origin: `https://localhost:${hbone.address.port}`, source: 'bench' },
    name: { host: HOST, name: 'app', namespace: 'bench' },
  }),
  tokensFor: () => noToken,
  target: 'mesh',
  maxStreams: 100,
  keepAliveMs: 30_000,
  helloTimeoutMs: 10_000,
  log: silentLogger,
  metrics,
});

async function openTls(port: number): Promise<TLSSocket> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    servername: SNI,
    ca: ca.certPem,
    checkServerIdentity: () => undefined,
  });
  await once(socket, 'secureConnect');
  return socket;
}

/** One new tunnel: connect, handshake with the app, one byte there and back, close. */
async function oneTunnel(port: number): Promise<void> {
  const socket = await openTls(port);
  const got = once(socket, 'data');
  socket.write('p');
  await got;
  socket.destroy();
}

/** New tunnels per second, `parallel` at a time. */
async function tunnelRate(port: number, parallel: number): Promise<number> {
  const start = performance.now();
  let left = TUNNELS;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (left-- > 0) await oneTunnel(port);
    }),
  );
  return TUNNELS / ((performance.now() - start) / 1000);
}

/** MB/s of one TLS connection sending BULK_MB to the app. */
async function bulk(port: number): Promise<number> {
  const socket = await openTls(port);
  const done = once(socket, 'end');
  socket.resume();
  const total = BULK_MB * 1024 * 1024;
  const start = performance.now();
  for (let sent = 0; sent < total; sent += CHUNK.length) {
    if (!socket.write(CHUNK)) await once(socket, 'drain');
  }
  socket.end();
  await done;
  return total / 1e6 / ((performance.now() - start) / 1000);
}

function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
}

const gatePort = gate.address.port;
const results: Record<string, { direct: number[]; gate: number[] }> = {
  'new tunnels/s, 1 at a time': { direct: [], gate: [] },
  [`new tunnels/s, ${PARALLEL} at a time`]: { direct: [], gate: [] },
  'bulk, 1 connection (MB/s)': { direct: [], gate: [] },
};
await tunnelRate(gatePort, PARALLEL); // warm up JIT and the gate's HTTP/2 connection
for (let round = 0; round < ROUNDS; round++) {
  const [serial, parallel, throughput] = Object.values(results) as [
    (typeof results)[string],
    (typeof results)[string],
    (typeof results)[string],
  ];
  serial.direct.push(await tunnelRate(appPort, 1));
  serial.gate.push(await tunnelRate(gatePort, 1));
  parallel.direct.push(await tunnelRate(appPort, PARALLEL));
  parallel.gate.push(await tunnelRate(gatePort, PARALLEL));
  throughput.direct.push(await bulk(appPort));
  throughput.gate.push(await bulk(gatePort));
}

const connections = metrics.value('krun_gate_upstream_connects_total', {
  destination: `https://localhost:${hbone.address.port}`,
});
process.stdout.write(
  `node ${process.version}, ${ROUNDS} rounds (median), ${TUNNELS} tunnels per rate run, ${BULK_MB} MiB per bulk run; ` +
    `the gate opened ${connections} HTTP/2 connection(s) for ${metrics.value('krun_gate_tunnels_total', { destination: `https://localhost:${hbone.address.port}` })} tunnels\n`,
);
process.stdout.write(`${'measure'.padEnd(30)} ${'direct TLS'.padStart(10)} ${'via gate'.padStart(10)}  ratio\n`);
for (const [name, { direct, gate: through }] of Object.entries(results)) {
  const a = median(direct);
  const b = median(through);
  process.stdout.write(
    `${name.padEnd(30)} ${a.toFixed(0).padStart(10)} ${b.toFixed(0).padStart(10)}  ${(b / a).toFixed(2)}x\n`,
  );
}
await gate.drain(0);
await hbone.close();
app.close();
