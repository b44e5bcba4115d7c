// Loopback TCP servers for the benchmarks' direct baselines and tunnel targets.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

/** A half-close-aware server on a free 127.0.0.1 port; socket errors (resets at the end of a run) are ignored. */
export async function listen(onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}
