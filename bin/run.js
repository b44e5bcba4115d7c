#!/usr/bin/env node
// The only place that turns errors into an exit status. Everything below is loaded lazily: krun is a container
// entrypoint, and `krun --version` must not pay for libraries it does not use.
import { once } from 'node:events';
import module from 'node:module';

module.enableCompileCache?.();
const { main } = await import('../dist/lib/cli/main.js');
process.exitCode = await main(process.argv.slice(2), import.meta.url);
// Exit now instead of when the event loop drains: Node's teardown can spin forever on HTTP/2 handles left by a
// reset tunnel (nodejs/node#47748), and an entrypoint that ignores SIGTERM gets SIGKILLed mid-drain. Output still
// queued (stdout on a socket) is flushed first.
for (const stream of [process.stdout, process.stderr]) {
  if (stream.writableLength > 0 && !stream.destroyed)
    await Promise.race([once(stream, 'drain'), once(stream, 'close')]);
}
process.exit();
