// Port forwarding. `ssh -L` (direct-tcpip) dials only allow-listed targets: loopback unless configured otherwise
// (the original dialled anything). `ssh -R` (tcpip-forward) listens on loopback only and always answers the
// request (the original never replied, so clients waiting for the answer hung); cancel-tcpip-forward is honoured.
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type {
  AcceptConnection,
  Connection,
  RejectConnection,
  ServerChannel,
  TcpipBindInfo,
  TcpipRequestInfo,
} from 'ssh2';
import type { AuditScope } from '../audit/audit.ts';
import type { Identity } from './auth.ts';

export interface ForwardPolicy {
  /** May `ssh -L` reach host:port? Default: loopback only. */
  readonly allowTarget?: (host: string, port: number) => boolean;
  /** Allow `ssh -R` listeners on loopback (default true). */
  readonly allowRemote?: boolean;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/**
 * Relays a channel and a socket with half-close in both directions. ssh2 sends CLOSE right after EOF when a server
 * channel's writable side ends, which would cut off the peer's answer; so the socket's end is passed on as a bare
 * EOF, and the channel is closed only once both directions are done.
 */
function pipeBoth(channel: ServerChannel, socket: Socket): void {
  let socketDone = false;
  let channelDone = false;
  const closeWhenBothDone = () => {
    if (socketDone && channelDone) channel.end();
  };
  socket.pipe(channel, { end: false });
  socket.on('end', () => {
    socketDone = true;
    channel.eof();
    closeWhenBothDone();
  });
  channel.pipe(socket);
  channel.on('end', () => {
    channelDone = true;
    closeWhenBothDone();
  });
  socket.on('error', () => channel.destroy());
  // The channel is gone: flush what it delivered, then drop the socket (nothing more can travel back).
  channel.on('close', () => socket.end(() => socket.destroy()));
}

export function handleDirectTcpip(
  accept: AcceptConnection<ServerChannel>,
  reject: RejectConnection,
  info: TcpipRequestInfo,
  who: Identity,
  policy: ForwardPolicy | undefined,
  audit: AuditScope,
): void {
  const target = `${info.destIP}:${info.destPort}`;
  const allowed = (policy?.allowTarget ?? isLoopback)(info.destIP, info.destPort);
  if (!who.permitPortForwarding || !allowed) {
    audit.record('ssh.forward.refused', 'ssh forward refused', { what: 'direct-tcpip', target }, 'warn');
    reject();
    return;
  }
  const socket = connect({ host: info.destIP, port: info.destPort, allowHalfOpen: true });
  socket.once('connect', () => {
    audit.record('ssh.forward', 'ssh forward', { what: 'direct-tcpip', target });
    pipeBoth(accept(), socket);
  });
  socket.once('error', (err) => {
    if (socket.connecting) {
      audit.record('ssh.forward.refused', 'ssh forward failed', { what: 'direct-tcpip', target, error: err.message });
      reject();
    }
  });
}

/** The `ssh -R` listeners of one connection, closed with it. */
export class RemoteForwards {
  readonly #client: Connection;
  readonly #who: Identity;
  readonly #policy: ForwardPolicy | undefined;
  readonly #audit: AuditScope;
  readonly #listeners = new Map<string, Server>();

  constructor(client: Connection, who: Identity, policy: ForwardPolicy | undefined, audit: AuditScope) {
    this.#client = client;
    this.#who = who;
    this.#policy = policy;
    this.#audit = audit;
  }

  request(
    accept: ((port?: number) => void) | undefined,
    reject: (() => void) | undefined,
    name: string,
    info: TcpipBindInfo | { socketPath: string },
  ): void {
    if (name === 'cancel-tcpip-forward' && 'bindPort' in info) {
      const key = `${info.bindAddr}:${info.bindPort}`;
      const server = this.#listeners.get(key);
      if (!server) {
        reject?.();
        return;
      }
      this.#listeners.delete(key);
      server.close();
      this.#audit.record('ssh.forward.cancel', 'ssh remote forward cancelled', { what: 'tcpip-forward', bind: key });
      accept?.();
      return;
    }
    if (name !== 'tcpip-forward' || !('bindPort' in info)) {
      reject?.();
      return;
    }
    const host = info.bindAddr === '' || info.bindAddr === 'localhost' ? '127.0.0.1' : info.bindAddr;
    if (!this.#who.permitPortForwarding || this.#policy?.allowRemote === false || !isLoopback(host)) {
      this.#audit.record('ssh.forward.refused', 'ssh forward refused', { what: 'tcpip-forward', bind: host }, 'warn');
      reject?.();
      return;
    }
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      const port = (server.address() as AddressInfo).port;
      this.#client.forwardOut(
        info.bindAddr,
        port,
        socket.remoteAddress ?? '127.0.0.1',
        socket.remotePort ?? 0,
        (err, channel) => {
          if (err) return socket.destroy();
          pipeBoth(channel, socket);
        },
      );
    });
    server.once('error', (err) => {
      this.#audit.record('ssh.forward.refused', 'ssh remote forward failed', {
        what: 'tcpip-forward',
        bind: host,
        error: err.message,
      });
      reject?.();
    });
    server.listen(info.bindPort, host, () => {
      const port = (server.address() as AddressInfo).port;
      this.#listeners.set(`${info.bindAddr}:${info.bindPort === 0 ? port : info.bindPort}`, server);
      this.#audit.record('ssh.forward', 'ssh remote forward', { what: 'tcpip-forward', bind: `${host}:${port}` });
      accept?.(port);
    });
  }

  closeAll(): void {
    for (const server of this.#listeners.values()) server.close();
    this.#listeners.clear();
  }
}
