// Start-up time of the Google Cloud emulator the tests use, against starting one bare HTTP server on loopback,
// measured in the same run.
import { createServer } from 'node:http';
import { startGcpEmulator } from '../test/support/gcp/index.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);

async function bareServer(): Promise<number> {
  const start = performance.now();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const ms = performance.now() - start;
  await new Promise((resolve) => server.close(resolve));
  return ms;
}

async function emulator(): Promise<number> {
  const start = performance.now();
  const gcp = await startGcpEmulator();
  const ms = performance.now() - start;
  await gcp.stop();
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const base: number[] = [];
const emu: number[] = [];
for (let i = 0; i < RUNS; i++) {
  base.push(await bareServer());
  emu.push(await emulator());
}
process.stdout.write(`${RUNS} runs each, median start-up\n`);
process.stdout.write(`one bare HTTP server   ${median(base).toFixed(2).padStart(8)} ms  1.0x\n`);
process.stdout.write(
  `GCP emulator (all)     ${median(emu).toFixed(2).padStart(8)} ms  ${(median(emu) / median(base)).toFixed(1)}x\n`,
);
