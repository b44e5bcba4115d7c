#!/usr/bin/env node
// The only place that turns errors into an exit status. Everything below is loaded lazily: krun is a container
// entrypoint, and `krun --version` must not pay for libraries it does not use.
import module from 'node:module';

module.enableCompileCache?.();
const { main, exitWhenFlushed } = await import('../dist/lib/cli/main.js');
await exitWhenFlushed(await main(process.argv.slice(2), import.meta.url));
