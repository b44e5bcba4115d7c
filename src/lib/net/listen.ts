// Starting a server on a host and port, as a promise that rejects with the listen error (EADDRINUSE, EACCES).
import type { AddressInfo } from 'node:net';
import { KrunError } from '../errors.ts';
import { formatHostPort } from './address.ts';

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

/** The bound address as users write it: `host:port`, IPv6 hosts in brackets. */
export function boundAddress(address: AddressInfo): string {
  return formatHostPort({ host: address.address, port: address.port });
}

/**
 * A local forwarding port: listens and resolves with the bound `host:port`; a failure is a KrunError naming the
 * address, with `inUseHint` when the port is taken.
 */
export async function listenLocal(server: Listenable, port: number, host: string, inUseHint: string): Promise<string> {
  try {
    return boundAddress(await listenOn(server, port, host));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new KrunError(`can't listen on ${host}:${port}: ${e.message}`, {
      hints: e.code === 'EADDRINUSE' ? [inUseHint] : [],
      cause: e,
    });
  }
}

/** Waits for `signal`, runs `stop`, and rejects with the signal's reason: forwarders run until aborted. */
export function untilAborted(signal: AbortSignal, stop: () => void): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    const onAbort = () => {
      stop();
      reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
