// Run by capture.test.ts inside the test's network namespace. Each argument PROTO:HOST:PORT:LABEL opens a listener
// that answers `LABEL` (TCP: on accept; UDP: to each datagram). A TCP listener labelled `capture` stands in for
// Envoy's 15001 and answers `capture <original destination>`, read from the kernel's connection tracking as
// Envoy's SO_ORIGINAL_DST would. Prints `ready` once all listen; runs until killed.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';

/** The original destination of a redirected TCP connection, from /proc/net/nf_conntrack of this namespace. */
function originalDestination(peer: Socket): string {
  for (const line of readFileSync('/proc/net/nf_conntrack', 'utf8').split('\n')) {
    if (!/\btcp\b/.test(line)) continue;
    const field = (name: string) => line.match(new RegExp(`\\b${name}=(\\S+)`))?.[1];
    if (field('src') === peer.remoteAddress && field('sport') === String(peer.remotePort)) {
      return `${field('dst')}:${field('dport')}`;
    }
  }
  return 'unknown';
}

const listening: Promise<void>[] = [];
for (const spec of process.argv.slice(2)) {
  const [proto, host, port, label] = spec.split(':');
  if (!host || !port || !label) throw new Error(`bad listener ${spec}`);
  listening.push(
    new Promise((resolve, reject) => {
      if (proto === 'udp') {
        const socket = createSocket('udp4');
        socket.on('message', (_msg, from) => socket.send(`${label}\n`, from.port, from.address));
        socket.once('error', reject);
        socket.bind(Number(port), host, resolve);
        return;
      }
      const server = createServer((conn) =>
        conn.end(`${label === 'capture' ? `capture ${originalDestination(conn)}` : label}\n`),
      );
      server.once('error', reject);
      server.listen(Number(port), host, resolve);
    }),
  );
}
await Promise.all(listening);
process.stdout.write('ready\n');
