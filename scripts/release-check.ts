// `npm run release-check`: everything a release must pass, in order, on this machine: build, lint and type-check;
// the bundle and the standalone executable; the whole test suite (which holds the packaging tests: test/package,
// completion and --help examples); then every benchmark (the `bench` and `bench:*` scripts), whose ratios the
// README quotes. Runs every step even after a failure, prints a summary, and exits 1 if any step failed.
// `npm run release-check -- NAME...` runs only the steps named.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const ROOT = new URL('..', import.meta.url).pathname;
const scripts = Object.keys(
  (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts,
);

const STEPS: Record<string, readonly string[]> = {
  check: ['npm', 'run', 'check'],
  package: [process.execPath, 'scripts/package.ts'],
  test: [
    process.execPath,
    '--test',
    '--test-global-setup=test/support/global-setup.ts',
    '--test-timeout=600000',
    'test/**/*.test.ts',
  ],
  // Every benchmark package.json names: `bench` and each `bench:*`.
  ...Object.fromEntries(scripts.filter((s) => /^bench(:|$)/.test(s)).map((s) => [s, ['npm', 'run', s]])),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((s) => !(s in STEPS));
if (unknown.length > 0) {
  process.stderr.write(
    `error: unknown step ${unknown.join(', ')}\n\nTry:\n  one of: ${Object.keys(STEPS).join(' ')}\n`,
  );
  process.exit(2);
}

const results: { name: string; ok: boolean; seconds: number }[] = [];
for (const [name, [command = '', ...args]] of Object.entries(STEPS)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  process.stderr.write(`\n=== ${name}: ${[command, ...args].join(' ')}\n`);
  const start = performance.now();
  const r = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  results.push({ name, ok: r.status === 0, seconds: (performance.now() - start) / 1000 });
}

process.stderr.write('\n=== release check\n');
for (const { name, ok, seconds } of results) {
  process.stderr.write(`${ok ? 'ok  ' : 'FAIL'} ${name.padEnd(14)} ${seconds.toFixed(0).padStart(5)} s\n`);
}
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
