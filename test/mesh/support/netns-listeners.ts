// Run by the capture tests inside their network namespace. Each argument PROTO:HOST:PORT:LABEL (an IPv6 HOST in
// brackets) opens a listener that answers `LABEL` (TCP: on accept; UDP: to each datagram; DNS: LABEL is the IPv4 address every A query gets).
// A TCP listener labelled `capture` stands in for Envoy's 15001 and answers `capture <original destination>`, read
// from the kernel's connection tracking as Envoy's SO_ORIGINAL_DST would. Prints `ready` once all listen; runs until
// killed.
import { createSocket } from 'node:dgram';
import { createServer, isIPv6 } from 'node:net';
import { originalDestination } from './conntrack.ts';

/** An answer to a DNS query: every A question gets `ip` (the question section is copied back). */
function dnsAnswer(query: Buffer, ip: string): Buffer {
  let end = 12;
  while (end < query.length && query[end] !== 0) end += (query[end] ?? 0) + 1;
  const question = query.subarray(12, end + 5);
  const header = Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  query.copy(header, 0, 0, 2);
  const answer = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...ip.split('.').map(Number)]);
  return Buffer.concat([header, question, answer]);
}

const listening: Promise<void>[] = [];
for (const spec of process.argv.slice(2)) {
  const [, proto, bracketed, port, label] = /^(\w+):(\[[^\]]+\]|[^:]+):(\d+):(.+)$/.exec(spec) ?? [];
  if (!bracketed || !port || !label) throw new Error(`bad listener ${spec}`);
  const host = bracketed.replace(/^\[(.*)\]$/, '$1');
  listening.push(
    new Promise((resolve, reject) => {
      if (proto === 'udp' || proto === 'dns') {
        const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
        socket.on('message', (msg, from) => {
          const reply = proto === 'dns' ? dnsAnswer(msg, label) : `${label}\n`;
          socket.send(reply, from.port, from.address);
        });
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
