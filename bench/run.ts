// The launcher's own overhead: `krun run -- true` (standalone, nothing configured) against running `true`
// directly, wall time and peak RSS, measured interleaved in the same run. Peak RSS comes from GNU time.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TIME = '/usr/bin/time';
if (!existsSync(TIME)) throw new Error(`${TIME} (Debian package "time") is needed for peak RSS`);
const BIN = new URL('../bin/run.js', import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const home = mkdtempSync(join(tmpdir(), 'krun-bench-'));
const env = { PATH: process.env.PATH, HOME: home, MESH_BASE_DIR: home, PORT_http: '-', CI: 'true' };

const cases: Record<string, string[]> = {
  'true (baseline)': ['true'],
  'krun run -- true': [process.execPath, BIN, 'run', '--', 'true'],
};

function once(args: string[]): { ms: number; rssKb: number } {
  const start = process.hrtime.bigint();
  const r = spawnSync(TIME, ['-f', '%M', ...args], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const rssKb = Number(r.stderr.trim().split('\n').at(-1));
  return { ms, rssKb };
}

const samples: Record<string, { ms: number; rssKb: number }[]> = Object.fromEntries(
  Object.keys(cases).map((k) => [k, []]),
);
for (const args of Object.values(cases)) once(args);
for (let i = 0; i < RUNS; i++) for (const [name, args] of Object.entries(cases)) samples[name]?.push(once(args));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const base = samples['true (baseline)'] ?? [];
const [baseMs, baseRss] = [median(base.map((s) => s.ms)), median(base.map((s) => s.rssKb))];
process.stdout.write(`node ${process.version}, ${RUNS} runs each, medians\n`);
for (const [name, xs] of Object.entries(samples)) {
  const ms = median(xs.map((s) => s.ms));
  const rss = median(xs.map((s) => s.rssKb));
  process.stdout.write(
    `${name.padEnd(20)} ${ms.toFixed(1).padStart(7)} ms (${(ms / baseMs).toFixed(1)}x)  ${(rss / 1024).toFixed(1).padStart(6)} MiB peak RSS (${(rss / baseRss).toFixed(1)}x)\n`,
  );
}
