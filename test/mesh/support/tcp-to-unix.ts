// Run inside a test's network namespace: listens on 127.0.0.1:PORT and pipes each connection to the Unix socket
// SOCKET, which the test serves in the host namespace. The filesystem is shared across network namespaces, so this
// is how `krun run` in the namespace reaches the apiserver and istiod without any interface leaving it.
import { connect, createServer } from 'node:net';

const [port, socket] = process.argv.slice(2);
if (!port || !socket) throw new Error('usage: tcp-to-unix.ts PORT SOCKET');
const server = createServer((inbound) => {
  const outbound = connect(socket);
  inbound.pipe(outbound).pipe(inbound);
  inbound.on('error', () => outbound.destroy());
  outbound.on('error', () => inbound.destroy());
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
