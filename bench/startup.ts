// Start-up cost of the CLI against the bare runtime, measured in the same run (interleaved, so machine load hits
// both alike). krun is a container entrypoint: this ratio is what a cold Cloud Run start pays for krun itself.
import { spawnSync } from 'node:child_process';

const BIN = new URL('../bin/run.js', import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 20);

const cases: Record<string, string[]> = {
  'node -e 0 (baseline)': ['-e', '0'],
  'krun --version': [BIN, '--version'],
  'krun version -o json': [BIN, 'version', '-o', 'json'],
};

function once(args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (const args of Object.values(cases)) once(args); // warm the compile cache and the page cache
for (let i = 0; i < RUNS; i++) for (const [name, args] of Object.entries(cases)) samples[name]?.push(once(args));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const baseline = median(samples['node -e 0 (baseline)'] ?? []);
process.stdout.write(`node ${process.version}, ${RUNS} runs each, median wall time\n`);
for (const [name, xs] of Object.entries(samples)) {
  process.stdout.write(
    `${name.padEnd(24)} ${median(xs).toFixed(1).padStart(7)} ms  ${(median(xs) / baseline).toFixed(2)}x\n`,
  );
}
