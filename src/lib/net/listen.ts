// Starting a server on a host and port, as a promise that rejects with the listen error (EADDRINUSE, EACCES).
import type { AddressInfo } from 'node:net';

interface Listenable {
  listen(port: number, host: string, callback: () => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
  off(event: 'error', listener: (err: Error) => void): unknown;
  address(): AddressInfo | string | null;
}

/** Listens on `host:port` (port 0 picks a free one) and resolves with the bound address. */
export function listenOn(server: Listenable, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
