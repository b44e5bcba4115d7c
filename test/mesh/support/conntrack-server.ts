// Run as root in a test's network namespace for the Envoy stand-in, which runs as UID 1337 like Envoy but, unlike
// Envoy, has no SO_ORIGINAL_DST (Node has no getsockopt) and may not read the connection tracking table: it asks
// here. Each connection sends `ADDRESS PORT` (the accepted connection's peer) and reads the original destination.
// Listens on the Unix socket given, open to every user; prints `ready`; runs until killed.
import { chmodSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { originalDestination } from './conntrack.ts';

const path = process.argv[2];
if (!path) throw new Error('usage: conntrack-server.ts SOCKET');
rmSync(path, { force: true });
createServer((conn) => {
  conn.once('data', (line: Buffer) => {
    const [remoteAddress, port] = line.toString().trim().split(' ');
    conn.end(`${originalDestination({ remoteAddress, remotePort: Number(port) })}\n`);
  });
}).listen(path, () => {
  chmodSync(path, 0o777);
  process.stdout.write('ready\n');
});
