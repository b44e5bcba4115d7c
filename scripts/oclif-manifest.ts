// Writes oclif.manifest.json from the built commands (what `oclif manifest` does), so `krun --help` and command
// lookup never import every command module. Run by `npm run build`; never edit the output by hand.
import { writeFileSync } from 'node:fs';
import { Plugin } from '@oclif/core';

const root = new URL('..', import.meta.url).pathname;
const plugin = new Plugin({ root, isRoot: true, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(`${root}oclif.manifest.json`, `${JSON.stringify(plugin.manifest, null, 2)}\n`);
