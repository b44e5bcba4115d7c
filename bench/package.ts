// Cold start and peak RSS of the shipped forms against the development build (bin/run.js over dist/, what the
// tests run), measured interleaved in one run: `krun --version` and `krun run -- true` (standalone, nothing
// configured), for the single-file bundle under node and the standalone executable. Peak RSS comes from GNU time.
// Builds the bundle and the executable first if dist/ changed (scripts/package.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePackaged } from '../scripts/package.ts';

const TIME = '/usr/bin/time';
if (!existsSync(TIME)) throw new Error(`${TIME} (Debian package "time") is needed for peak RSS`);
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const DEV = new URL('../bin/run.js', import.meta.url).pathname;
const { bundle, sea } = await ensurePackaged();
const home = mkdtempSync(join(tmpdir(), 'krun-bench-'));
const env = {
  PATH: process.env.PATH,
  HOME: home,
  MESH_BASE_DIR: home,
  PORT_http: '-',
  KRUN_HBONE_PORT: '-',
  CI: 'true',
};

const builds: Record<string, string[]> = {
  dev: [process.execPath, DEV],
  bundle: [process.execPath, bundle],
  standalone: [sea],
};
const commands: Record<string, string[]> = { '--version': ['--version'], 'run -- true': ['run', '--', 'true'] };

interface Sample {
  readonly ms: number;
  /** User plus system CPU time: less disturbed than wall time when other processes share the cores. */
  readonly cpuMs: number;
  readonly rssKb: number;
}

function once(args: string[]): Sample {
  const start = process.hrtime.bigint();
  const r = spawnSync(TIME, ['-f', '%U %S %M', ...args], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const [user = 0, sys = 0, rssKb = 0] = (r.stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  return { ms, cpuMs: (user + sys) * 1000, rssKb };
}

const cases = Object.entries(commands).flatMap(([command, args]) =>
  Object.entries(builds).map(([build, prefix]) => ({ command, build, args: [...prefix, ...args] })),
);
const samples = new Map(cases.map((c) => [c, [] as Sample[]]));
for (const c of cases) once(c.args); // warm the page cache and the dev build's compile cache
for (let i = 0; i < RUNS; i++) for (const c of cases) samples.get(c)?.push(once(c.args));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
process.stdout.write(`node ${process.version}, ${RUNS} runs each, medians; ratios against the dev build\n`);
for (const command of Object.keys(commands)) {
  const rows = cases
    .filter((c) => c.command === command)
    .map((c) => {
      const xs = samples.get(c) ?? [];
      const m = (f: (s: Sample) => number) => median(xs.map(f));
      return { build: c.build, ms: m((s) => s.ms), cpu: m((s) => s.cpuMs), rss: m((s) => s.rssKb) / 1024 };
    });
  const dev = rows.find((r) => r.build === 'dev') ?? { ms: Number.NaN, cpu: Number.NaN, rss: Number.NaN };
  const cell = (value: number, base: number, digits: number, unit: string) =>
    `${value.toFixed(digits).padStart(6)} ${unit} (${(value / base).toFixed(2)}x)`;
  for (const { build, ms, cpu, rss } of rows) {
    process.stdout.write(
      `krun ${command.padEnd(12)} ${build.padEnd(11)} ${cell(ms, dev.ms, 0, 'ms wall')}  ${cell(cpu, dev.cpu, 0, 'ms CPU')}  ${cell(rss, dev.rss, 1, 'MiB peak RSS')}\n`,
    );
  }
}
