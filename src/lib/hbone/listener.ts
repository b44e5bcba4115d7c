// One port, every protocol a front end may use: HTTP/2 with prior knowledge (what Cloud Run forwards to a service
// deployed with --use-http2) and HTTP/1.1 (WebSocket upgrades, CONNECT, plain requests) in cleartext, told apart by
// the HTTP/2 connection preface; with TLS, ALPN decides (h2 or http/1.1).
import type { Socket } from 'node:net';
import { createServer as createNetServer, type Server } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface ProtocolHandlers {
  h2(socket: Socket): void;
  h1(socket: Socket): void;
}

/**
 * HTTP/2 has no half-closed connections: the peer's FIN ends the session (its streams half-close on their own), so
 * the socket must end with it. Only HTTP/1.1 connections stay half-open, for CONNECT and upgraded tunnels.
 */
function toHttp2(socket: Socket, handlers: ProtocolHandlers): void {
  socket.allowHalfOpen = false;
  handlers.h2(socket);
}

/** Reads until the first bytes decide the protocol, then hands the socket on with those bytes put back. */
export function sniffProtocol(socket: Socket, handlers: ProtocolHandlers): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const h2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (h2 && n < PREFACE.length) return;
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    socket.unshift(seen);
    if (h2) {
      // The HTTP/2 session takes the put-back bytes from the socket's buffer itself.
      toHttp2(socket, handlers);
    } else {
      // Node's HTTP/1 parser reads the socket natively; the put-back bytes arrive as a 'data' event once resumed.
      handlers.h1(socket);
      socket.resume();
    }
  };
  const onEnd = (): void => {
    socket.destroy();
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
}

export interface ListenerOptions {
  /** PEM key and certificate chain: serve TLS (ALPN h2, http/1.1) instead of cleartext. */
  readonly tls?: Pick<TlsOptions, 'key' | 'cert' | 'ca'>;
}

export function createListener(options: ListenerOptions, handlers: ProtocolHandlers): Server {
  if (options.tls) {
    const server = createTlsServer({ ...options.tls, ALPNProtocols: ['h2', 'http/1.1'], allowHalfOpen: true });
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') toHttp2(socket, handlers);
      else handlers.h1(socket);
    });
    server.on('tlsClientError', () => {});
    return server;
  }
  return createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    sniffProtocol(socket, handlers);
  });
}
