// The entry point of the single-file bundle and the standalone executable, which have no command files, manifest or
// package.json on disk: oclif gets a root plugin built from the manifest and package.json inlined at build time
// (scripts/bundle.ts), whose commands and hooks are imported only when oclif runs them. `krun run` therefore
// evaluates only the modules `run` imports, never the cloud clients of operator commands.
import { dirname } from 'node:path';
import type { Command, Config, Hook, Interfaces } from '@oclif/core';
import { exitWhenFlushed, main } from './main.ts';

type Module<T> = () => Promise<{ default: T }>;
type OclifModule = typeof import('@oclif/core');

export interface Bundle {
  readonly pjson: Interfaces.PJSON;
  readonly manifest: Interfaces.Manifest;
  readonly commands: Readonly<Record<string, Module<Command.Class>>>;
  /** Each event's hooks, in package.json's order. */
  readonly hooks: Readonly<Record<string, readonly Module<Hook<string>>[]>>;
}

/** An oclif root plugin whose command list is the manifest and whose commands load through `bundle.commands`. */
function bundledPlugin(bundle: Bundle, root: string): Interfaces.Plugin {
  const { pjson, manifest } = bundle;
  const findCommand = async (id: string): Promise<Command.Class> => {
    const load = bundle.commands[id];
    if (!load) throw new Error(`command ${id} is not in the bundle`);
    const cmd = (await load()).default;
    cmd.id = id;
    cmd.plugin = plugin;
    return cmd;
  };
  const plugin: Interfaces.Plugin = {
    _base: `${pjson.name}@${pjson.version}`,
    alias: pjson.name,
    name: pjson.name,
    version: pjson.version,
    pjson,
    root,
    type: 'core',
    isRoot: true,
    valid: true,
    moduleType: 'commonjs',
    hasManifest: true,
    options: { root, isRoot: true, pjson },
    commandsDir: undefined,
    commandIDs: Object.keys(manifest.commands),
    commands: Object.entries(manifest.commands)
      .map(([id, cached]) => ({
        ...cached,
        id,
        pluginAlias: pjson.name,
        pluginType: 'core',
        load: () => findCommand(id),
      }))
      .sort((a, b) => a.id.localeCompare(b.id)),
    // Served by serveBundledHooks: oclif loads a hook from a file path, and the bundle has none.
    hooks: {},
    topics: topics(pjson.oclif.topics),
    findCommand: findCommand as Interfaces.Plugin['findCommand'],
    load: async () => {},
  };
  return plugin;
}

/** package.json's topics, subtopics flattened to `a:b` names (what oclif's own plugin does). */
function topics(input: Interfaces.PJSON['oclif']['topics'], prefix = ''): Interfaces.Topic[] {
  return Object.entries(input ?? {}).flatMap(([name, t]) => [
    { name: `${prefix}${name}`, description: t.description, hidden: t.hidden },
    ...topics(t.subtopics, `${prefix}${name}:`),
  ]);
}

/** Makes oclif run the bundle's hooks: its runHook only imports hook files, which the bundle doesn't have. */
function serveBundledHooks(oclif: OclifModule, hooks: Bundle['hooks'], plugin: Interfaces.Plugin): void {
  const { Config, Errors, ux } = oclif;
  const runHook = Config.prototype.runHook;
  Config.prototype.runHook = async function (this: Config, event: string, opts, timeout, captureErrors) {
    const loads = hooks[event];
    if (!loads) return runHook.call(this, event, opts, timeout, captureErrors);
    // The context oclif gives hooks.
    const context = {
      config: this,
      debug() {},
      error: Errors.error,
      exit: Errors.exit,
      log: ux.stdout,
      warn: Errors.warn,
    };
    const final: Awaited<ReturnType<typeof runHook>> = { successes: [], failures: [] };
    for (const load of loads) {
      try {
        const hook = (await load()).default;
        final.successes.push({ plugin, result: await hook.call(context, { ...opts, config: this, context }) });
      } catch (error) {
        if (!captureErrors && (error as { oclif?: { exit?: number } }).oclif?.exit) throw error;
        final.failures.push({ plugin, error: error as Error });
      }
    }
    return final;
  } as typeof runHook;
}

/** Runs krun from the bundle and exits (the bundle's file, or the standalone executable, is the root). */
export async function runBundled(bundle: Bundle, file: string): Promise<never> {
  const oclif = await import('@oclif/core');
  const root = dirname(file);
  const plugin = bundledPlugin(bundle, root);
  serveBundledHooks(oclif, bundle.hooks, plugin);
  const plugins = new Map([[plugin.name, plugin]]);
  return exitWhenFlushed(await main(process.argv.slice(2), { root, pjson: bundle.pjson, plugins }));
}
