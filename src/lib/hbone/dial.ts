// Opening the local end of a tunnel. Injected into the server so tests can count, refuse or stall connections.
import { connect, type Socket } from 'node:net';
import type { TargetAddress } from './targets.ts';

/** Connects to a target; the socket must allow half-open connections (a FIN from the peer ends only reading). */
export type Dialer = (target: TargetAddress, signal?: AbortSignal) => Promise<Socket>;

export const dialTcp: Dialer = (target, signal) =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true, signal });
    const onError = (err: Error) => reject(err);
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
