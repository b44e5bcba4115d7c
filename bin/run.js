#!/usr/bin/env node
// The only place that turns errors into an exit status. Everything below is loaded lazily: krun is a container
// entrypoint, and `krun --version` must not pay for libraries it does not use.
import { once } from 'node:events';
import module from 'node:module';

module.enableCompileCache?.();
const { main } = await import('../dist/lib/cli/main.js');
// Invoked through a symlink named `docker` (the KRM function shim kustomize and kpt find on PATH): `krun docker …`.
const invokedAs = process.argv[1]?.split('/').pop();
const argv = invokedAs === 'docker' ? ['docker', ...process.argv.slice(2)] : process.argv.slice(2);
process.exitCode = await main(argv, import.meta.url);
// Exit now instead of when the event loop drains: Node's teardown can spin forever on HTTP/2 handles left by a
// reset tunnel (nodejs/node#47748), and an entrypoint that ignores SIGTERM gets SIGKILLed mid-drain. Output still
// queued (stdout on a socket) is flushed first.
for (const stream of [process.stdout, process.stderr]) {
  if (stream.writableLength > 0 && !stream.destroyed)
    await Promise.race([once(stream, 'drain'), once(stream, 'close')]);
}
process.exit();
