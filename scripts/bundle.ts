// Bundles the built CLI (dist/ and oclif.manifest.json) into one CommonJS file, dist-bundle/main.cjs, run by the npm
// package's `krun` (dist-bundle/krun.cjs) and by the standalone executable (scripts/sea.ts); the last step of
// `npm run build`.
// Commands and hooks are found the way oclif finds them (the manifest, package.json's hooks), never listed by hand,
// and each is imported lazily: esbuild wraps a dynamically imported module in a function that runs on first import,
// so `krun run` evaluates only what `run` needs. Files under templates/ are inlined (src/lib/fs/shipped.ts is
// replaced). Writes the esbuild metafile beside the bundle for tests.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, normalize, relative } from 'node:path';
import { build, type Plugin } from 'esbuild';

export const ROOT = new URL('..', import.meta.url).pathname;
export const OUT_DIR = join(ROOT, 'dist-bundle');
/** The bundle: the standalone executable's main script. */
export const BUNDLE = join(OUT_DIR, 'main.cjs');
/** The npm package's `krun`: turns on Node's compile cache, then runs the bundle. */
export const LAUNCHER = join(OUT_DIR, 'krun.cjs');
export const METAFILE = join(OUT_DIR, 'meta.json');

interface Manifest {
  commands: Record<string, { relativePath?: string[] }>;
}
type HookEntry = string | { target: string; identifier?: string };

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const specifier = (path: string) => JSON.stringify(`./${normalize(path)}`);

function entrySource(): string {
  const manifestFile = join(ROOT, 'oclif.manifest.json');
  if (!existsSync(manifestFile) || !existsSync(join(ROOT, 'dist')))
    throw new Error('dist/ or oclif.manifest.json is missing: run `npm run build` first');
  const pjson = JSON.parse(read('package.json'));
  const manifest = JSON.parse(read('oclif.manifest.json')) as Manifest;
  const commands = Object.entries(manifest.commands).map(([id, c]) => {
    if (!c.relativePath) throw new Error(`the manifest has no file for command ${id}`);
    return `${JSON.stringify(id)}: () => import(${specifier(c.relativePath.join('/'))})`;
  });
  const hooks = Object.entries((pjson.oclif.hooks ?? {}) as Record<string, HookEntry | HookEntry[]>).map(
    ([event, entries]) => {
      const loads = [entries].flat().map((entry) => {
        const { target, identifier = 'default' } = typeof entry === 'string' ? { target: entry } : entry;
        const load = `import(${specifier(target)})`;
        return `() => ${identifier === 'default' ? load : `${load}.then((m) => ({ default: m[${JSON.stringify(identifier)}] }))`}`;
      });
      return `${JSON.stringify(event)}: [${loads.join(', ')}]`;
    },
  );
  // Only what oclif reads at run time: no scripts, dependencies or file lists in the binary.
  const { name, version, description, license, oclif } = pjson;
  const runtimePjson = { name, version, description, license, oclif: { ...oclif, hooks: {} } };
  return `import manifest from './oclif.manifest.json' with { type: 'json' };
import { runBundled } from './dist/lib/cli/bundled.js';
runBundled({
  pjson: ${JSON.stringify(runtimePjson)},
  manifest,
  commands: {\n    ${commands.join(',\n    ')},\n  },
  hooks: {\n    ${hooks.join(',\n    ')},\n  },
}, require('node:sea').isSea() ? process.execPath : __filename);
`;
}

/** Replaces dist/lib/fs/shipped.js with the contents of every file under templates/. */
function inlineShippedFiles(): Plugin {
  const shipped = join(ROOT, 'dist/lib/fs/shipped.js');
  return {
    name: 'inline-shipped-files',
    setup(b) {
      b.onLoad({ filter: /[\\/]dist[\\/]lib[\\/]fs[\\/]shipped\.js$/ }, (args) => {
        if (args.path !== shipped) return undefined;
        const files = Object.fromEntries(
          readdirSync(join(ROOT, 'templates'), { recursive: true, withFileTypes: true })
            .filter((e) => e.isFile())
            .map((e) => relative(ROOT, join(e.parentPath, e.name)))
            .map((f) => [f, read(f)]),
        );
        return {
          loader: 'js',
          contents: `// Inlined by scripts/bundle.ts.
const FILES = ${JSON.stringify(files)};
export function shippedPath(relative) { return 'krun-bundle:' + relative; }
export async function readShipped(relative) {
  const text = FILES[relative];
  if (text === undefined) throw new Error('krun was bundled without ' + relative);
  return text;
}
`,
        };
      });
    },
  };
}

export async function bundle(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  const result = await build({
    stdin: { contents: entrySource(), resolveDir: ROOT, sourcefile: 'krun-bundle-entry.js', loader: 'js' },
    outfile: BUNDLE,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node22', // package.json's engines
    // ssh2's native crypto binding and cpu-features are optional (ssh2 falls back to Node's crypto); a standalone
    // executable can't load addons from the bundle anyway.
    external: ['*.node', 'cpu-features'],
    // import.meta is empty in CommonJS: code that locates files with it would break only in the bundle.
    logOverride: { 'empty-import-meta': 'error' },
    plugins: [inlineShippedFiles()],
    metafile: true,
    legalComments: 'none',
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  }).catch((err: Error) => {
    if (err.message.includes('import.meta'))
      err.message +=
        '\nTry: read files under templates/ with readShipped() (src/lib/fs/shipped.ts); the bundle inlines them.';
    throw err;
  });
  writeFileSync(METAFILE, JSON.stringify(result.metafile));
  // Node caches V8's compiled code of main.cjs across runs: a cold start then skips parsing the whole bundle.
  writeFileSync(
    LAUNCHER,
    `#!/usr/bin/env node\nrequire('node:module').enableCompileCache?.();\nrequire('./${basename(BUNDLE)}');\n`,
  );
  chmodSync(LAUNCHER, 0o755);
}

if (import.meta.main) await bundle();
