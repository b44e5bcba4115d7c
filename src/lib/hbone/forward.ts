// `krun hbone -L [addr:]localport:target URL`: each local TCP connection becomes one tunnel, all of them streams of
// the same HTTP/2 connection. Runs until the signal aborts; a failed tunnel resets its local connection only.
import { createServer, type Socket } from 'node:net';
import type { Logger } from '../log/logger.ts';
import { listenLocal, untilAborted } from '../net/listen.ts';
import type { HboneClient } from './client.ts';
import { splice } from './pipe.ts';
import type { ForwardSpec } from './url.ts';

export interface LocalForwardOptions {
  readonly client: HboneClient;
  readonly forwards: readonly ForwardSpec[];
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Called once every listener is up, with the bound `host:port` of each forward (port 0 resolved). */
  readonly onListening?: (addresses: readonly string[]) => void;
}

export async function runLocalForwards(options: LocalForwardOptions): Promise<never> {
  const { client, log, signal } = options;
  const local = new Set<Socket>();
  const handle = (socket: Socket, target: string): void => {
    local.add(socket);
    socket.once('close', () => local.delete(socket));
    socket.on('error', () => {});
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    client.open(target).then(
      async (tunnel) => {
        log.debug('tunnel open', { target, peer, via: tunnel.via });
        const result = await splice(
          { stream: socket, reset: () => socket.resetAndDestroy() },
          { stream: tunnel.stream, reset: tunnel.reset },
        );
        if (result.error) log.warn('tunnel broke', { target, peer, error: result.error.message });
        else log.debug('tunnel closed', { target, peer, sent: result.aToB, received: result.bToA });
      },
      (err: Error) => {
        log.warn(`can't open a tunnel to ${target}: ${err.message}`, { peer });
        if (!socket.destroyed) socket.resetAndDestroy();
      },
    );
  };
  const servers = options.forwards.map((spec) =>
    createServer({ allowHalfOpen: true, noDelay: true }, (socket) => handle(socket, spec.target)),
  );
  const closeAll = () => {
    for (const server of servers) server.close();
    for (const socket of local) socket.destroy();
    client.close();
  };
  try {
    const addresses = await Promise.all(
      servers.map((server, i) => {
        const spec = options.forwards[i] as ForwardSpec;
        return listenLocal(server, spec.localPort, spec.bindHost, 'pick another local port, or 0 for any free port');
      }),
    );
    for (const [i, address] of addresses.entries()) {
      log.info(`Forwarding from ${address} -> ${options.forwards[i]?.target}`);
    }
    options.onListening?.(addresses);
  } catch (err) {
    closeAll();
    throw err;
  }
  return untilAborted(signal, closeAll);
}
