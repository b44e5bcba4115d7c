// The HBONE tunnel server that `krun run` starts last, once the app and the mesh are ready. One port serves:
//   - tunnels: HTTP/2 `CONNECT host:port` and `POST /_hbone/<port|name>`, and WebSocket upgrades of the same paths
//     over HTTP/1.1 (plus HTTP/1.1 CONNECT), to the allow-listed targets only;
//   - everything else, reverse-proxied to the application port.
// Optional bearer-JWT authentication guards it for deployments not behind Cloud Run IAM.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  constants,
  createServer as createHttp2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Audit, type Caller, callerFields, connectionId } from '../audit/audit.ts';
import type { Logger } from '../log/logger.ts';
import { boundAddress, listenOn } from '../net/listen.ts';
import { type Authenticator, frontEndPrincipal } from './auth.ts';
import { type Dialer, dialTcp } from './dial.ts';
import type { Hop } from './forwarded.ts';
import { SESSION_WINDOW, STREAM_WINDOW } from './h2-windows.ts';
import { createListener } from './listener.ts';
import { splice, type TunnelSide } from './pipe.ts';
import { createReverseProxy } from './reverse-proxy.ts';
import { type Route, routeRequest } from './routes.ts';
import type { Target, TargetTable } from './targets.ts';
import { MAX_MESSAGE_BYTES, WebSocketDuplex } from './websocket.ts';

export interface HboneServerOptions {
  /** Where to listen; the launcher uses 0.0.0.0:15009. Port 0 picks a free port. */
  readonly listen: { readonly host?: string; readonly port: number };
  readonly targets: TargetTable;
  /** Requests that are not tunnels go to 127.0.0.1:<appPort>; without it they get 404. */
  readonly appPort?: number;
  /** Serve TLS with ALPN h2/http1.1 (VMs, Docker) instead of cleartext (Cloud Run terminates TLS itself). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  readonly auth?: Authenticator;
  /** What `auth` guards: every request (default), or only tunnels (the app does its own authentication). */
  readonly authScope?: 'all' | 'tunnels';
  readonly log: Logger;
  /** Tunnel events go to the audit trail, and tunnels are registered there for the SSH server to name. */
  readonly audit?: Audit;
  /**
   * Read the caller from the token Cloud Run's front end verified and forwarded without its signature. Only where
   * that front end is the sole way in (on Cloud Run, without in-process authentication).
   */
  readonly trustFrontEndIdentity?: boolean;
  /** Aborting it closes the server like close(). */
  readonly signal?: AbortSignal;
  readonly dial?: Dialer;
  /** Sent as `krun-instance` on every opened HTTP/2 tunnel, so clients can say which instance they reached. */
  readonly instance?: string;
}

export interface HboneServer {
  readonly address: AddressInfo;
  /** `http://host:port` (or https), for clients. */
  readonly url: string;
  /** Tunnels open right now. */
  readonly openTunnels: number;
  /** TCP (or TLS) connections accepted since the start. */
  readonly acceptedConnections: number;
  /** Resolves once no tunnel is open (at once if none is). */
  whenIdle(): Promise<void>;
  /** Stops listening and tears down every connection and tunnel. */
  close(): Promise<void>;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  426: 'Upgrade Required',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function rawReply(socket: Duplex, status: number, extra = ''): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status} ${REASONS[status] ?? ''}\r\ncontent-length: 0\r\nconnection: close\r\n${extra}\r\n`);
}

function resetSocket(socket: Socket): () => void {
  return () => {
    if (!socket.destroyed) socket.resetAndDestroy();
  };
}

export async function startHboneServer(options: HboneServerOptions): Promise<HboneServer> {
  const { log, targets } = options;
  const dial = options.dial ?? dialTcp;
  const secure = options.tls !== undefined;
  const proxy =
    options.appPort === undefined ? undefined : createReverseProxy({ appPort: options.appPort, log: log.with({}) });
  const sessions = new Set<ServerHttp2Session>();
  const sockets = new Set<Socket>();
  const tunnelStreams = new Set<Duplex>();
  let openTunnels = 0;
  let acceptedConnections = 0;
  let idleWaiters: (() => void)[] = [];
  let wss: import('ws').WebSocketServer | undefined;

  const hopOf = (remoteAddress: string | undefined, host: string | undefined): Hop => ({
    remoteAddress: remoteAddress ?? 'unknown',
    proto: secure ? 'https' : 'http',
    ...(host ? { host } : {}),
  });

  const isTunnel = (route: Route) => route.kind === 'tunnel' || route.kind === 'unknown-target';
  const refusedTunnel = (route: Route, peer: string, status: number, reason: string): void => {
    if (!isTunnel(route)) return;
    options.audit?.record(
      'tunnel.refused',
      'tunnel refused',
      {
        target: route.kind === 'tunnel' || route.kind === 'unknown-target' ? route.requested : '',
        peer,
        status,
        reason,
      },
      'warn',
    );
  };

  /** `refused`: the status to refuse the request with; else it may go on, from `caller` when known. */
  const authorize = async (
    headers: IncomingHttpHeaders,
    route: Route,
    peer: string,
  ): Promise<{ refused?: number; caller?: Caller }> => {
    if (!options.auth) {
      const principal = options.trustFrontEndIdentity ? frontEndPrincipal(headers) : undefined;
      return principal ? { caller: { principal, verifiedBy: 'cloud-run' } } : {};
    }
    if (options.authScope === 'tunnels' && route.kind === 'proxy') return {};
    try {
      const result = await options.auth.authenticate(headers);
      if (result.ok) {
        log.debug('authenticated', { principal: result.principal, peer });
        return { caller: { principal: result.principal, verifiedBy: 'jwt' } };
      }
      log.warn('request rejected', { status: result.status, reason: result.reason, peer });
      refusedTunnel(route, peer, result.status, result.reason);
      return { refused: result.status };
    } catch (err) {
      log.error('cannot verify credentials', { error: (err as Error).message });
      return { refused: 503 };
    }
  };

  /** Dials the target, or logs why not; undefined when the dial failed. */
  const dialTarget = async (target: Target, requested: string, peer: string): Promise<Socket | undefined> => {
    try {
      const socket = await dial(target);
      socket.setNoDelay(true);
      return socket;
    } catch (err) {
      log.warn('tunnel target unreachable', {
        target: requested,
        address: `${target.host}:${target.port}`,
        peer,
        error: (err as Error).message,
      });
      options.audit?.record(
        'tunnel.refused',
        'tunnel refused',
        { target: requested, peer, status: 502, reason: `target unreachable: ${(err as Error).message}` },
        'warn',
      );
      return undefined;
    }
  };

  /** Who asked for a tunnel, and over what: the audit fields of its events. */
  interface Opening {
    readonly requested: string;
    readonly peer: string;
    readonly caller: Caller | undefined;
    readonly transport: 'h2' | 'websocket' | 'connect';
    readonly forwardedFor: string | undefined;
  }

  const runTunnel = async (client: TunnelSide, upstream: Socket, o: Opening): Promise<void> => {
    openTunnels += 1;
    tunnelStreams.add(client.stream);
    tunnelStreams.add(upstream);
    const conn = connectionId();
    const started = Date.now();
    const fields = {
      conn,
      target: o.requested,
      port: upstream.remotePort,
      peer: o.peer,
      ...(o.forwardedFor ? { forwardedFor: o.forwardedFor } : {}),
      ...callerFields(o.caller),
      transport: o.transport,
    };
    const forget = options.audit?.tunnels.add(`${upstream.localAddress}:${upstream.localPort}`, {
      conn,
      caller: o.caller,
    });
    options.audit?.record('tunnel.open', 'tunnel opened', fields);
    const result = await splice(client, { stream: upstream, reset: resetSocket(upstream) });
    forget?.();
    options.audit?.record('tunnel.close', 'tunnel closed', {
      ...fields,
      bytesIn: result.aToB,
      bytesOut: result.bToA,
      durationMs: Date.now() - started,
      // OpenSSH kills its ProxyCommand once done, so SSH tunnels usually end with a reset rather than two ends.
      ...(result.error ? { ended: 'reset', error: result.error.message } : { ended: 'cleanly' }),
    });
    openTunnels -= 1;
    if (openTunnels === 0) {
      for (const wake of idleWaiters) wake();
      idleWaiters = [];
    }
    tunnelStreams.delete(client.stream);
    tunnelStreams.delete(upstream);
  };

  const unknownTarget = (requested: string, peer: string): void => {
    log.warn('tunnel target not allowed', { target: requested, peer });
    options.audit?.record(
      'tunnel.refused',
      'tunnel refused',
      { target: requested, peer, status: 404, reason: 'target not allowed' },
      'warn',
    );
  };

  // --- HTTP/2

  const onStream = async (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> => {
    stream.on('error', () => {});
    const method = String(headers[':method'] ?? '');
    const peer = stream.session?.socket?.remoteAddress ?? 'unknown';
    const route = routeRequest(targets, method, first(headers[':path']), first(headers[':authority']));
    const { refused, caller } = await authorize(headers, route, peer);
    if (stream.destroyed) return;
    if (refused !== undefined) {
      stream.respond(
        { ':status': refused, ...(refused === 401 ? { 'www-authenticate': 'Bearer' } : {}) },
        { endStream: true },
      );
      return;
    }
    if (route.kind === 'proxy') {
      if (proxy) proxy.h2(stream, headers, hopOf(peer, first(headers[':authority'])));
      else stream.respond({ ':status': 404 }, { endStream: true });
      return;
    }
    if (route.kind === 'probe') {
      stream.respond({ ':status': 204 }, { endStream: true });
      return;
    }
    if (route.kind === 'unknown-target') {
      unknownTarget(route.requested, peer);
      stream.respond({ ':status': 404 }, { endStream: true });
      return;
    }
    if (method !== 'CONNECT' && method !== 'POST') {
      stream.respond({ ':status': 405, allow: 'POST' }, { endStream: true });
      return;
    }
    const upstream = await dialTarget(route.target, route.requested, peer);
    if (!upstream) {
      if (!stream.destroyed) stream.respond({ ':status': 502 }, { endStream: true });
      return;
    }
    if (stream.destroyed) {
      upstream.destroy();
      return;
    }
    stream.respond({ ':status': 200, ...(options.instance ? { 'krun-instance': options.instance } : {}) });
    await runTunnel(
      {
        stream,
        // destroy() sends RST_STREAM at once; close(code) would send END_STREAM first and look like a clean end.
        reset: (cause) => stream.destroy(cause),
      },
      upstream,
      { requested: route.requested, peer, caller, transport: 'h2', forwardedFor: first(headers['x-forwarded-for']) },
    );
  };

  const h2 = createHttp2Server({
    settings: { initialWindowSize: STREAM_WINDOW, maxConcurrentStreams: 1000 },
    maxSessionMemory: 256,
  });
  h2.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => {});
    session.on('connect', () => session.setLocalWindowSize(SESSION_WINDOW));
  });
  h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    onStream(stream, headers).catch((err: Error) => {
      log.error('tunnel request failed', { error: err.message });
      if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    });
  });
  h2.on('sessionError', () => {});

  // --- HTTP/1.1

  const h1 = createHttpServer({ requireHostHeader: false });
  h1.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const peer = req.socket.remoteAddress ?? 'unknown';
    const route = routeRequest(targets, req.method ?? 'GET', req.url, req.headers.host);
    void authorize(req.headers, route, peer).then(({ refused }) => {
      if (refused !== undefined) {
        res.writeHead(refused, refused === 401 ? { 'www-authenticate': 'Bearer' } : {}).end();
      } else if (route.kind === 'proxy') {
        if (proxy) proxy.h1(req, res, hopOf(peer, req.headers.host));
        else res.writeHead(404, { 'content-length': 0 }).end();
      } else if (route.kind === 'unknown-target') {
        unknownTarget(route.requested, peer);
        res.writeHead(404, { 'content-length': 0 }).end();
      } else {
        // A tunnel or the probe over HTTP/1.1: full-duplex bodies do not survive HTTP/1.1 front ends (they may
        // buffer the whole request), so krun's client switches to WebSocket on 426.
        res.writeHead(426, { upgrade: 'websocket', connection: 'Upgrade', 'content-length': 0 }).end();
      }
      req.resume();
    });
  });

  h1.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {});
    const peer = socket.remoteAddress ?? 'unknown';
    const route = routeRequest(targets, req.method ?? 'GET', req.url, req.headers.host);
    void (async () => {
      const { refused, caller } = await authorize(req.headers, route, peer);
      if (refused !== undefined)
        return rawReply(socket, refused, refused === 401 ? 'www-authenticate: Bearer\r\n' : '');
      if (route.kind === 'proxy') {
        if (proxy) proxy.upgrade(req, socket, head, hopOf(peer, req.headers.host));
        else rawReply(socket, 404);
        return;
      }
      if (route.kind !== 'tunnel') {
        if (route.kind === 'unknown-target') unknownTarget(route.requested, peer);
        return rawReply(socket, 404);
      }
      if (String(req.headers.upgrade).toLowerCase() !== 'websocket') return rawReply(socket, 400);
      const upstream = await dialTarget(route.target, route.requested, peer);
      if (!upstream) return rawReply(socket, 502);
      if (socket.destroyed) return void upstream.destroy();
      if (!wss) {
        const { WebSocketServer } = await import('ws');
        wss ??= new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_MESSAGE_BYTES });
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = new WebSocketDuplex(ws);
        void runTunnel({ stream }, upstream, {
          requested: route.requested,
          peer,
          caller,
          transport: 'websocket',
          forwardedFor: first(req.headers['x-forwarded-for']),
        });
      });
    })().catch((err: Error) => {
      log.error('upgrade failed', { error: err.message });
      socket.destroy();
    });
  });

  h1.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {});
    const peer = socket.remoteAddress ?? 'unknown';
    const route = routeRequest(targets, 'CONNECT', undefined, req.url);
    void (async () => {
      const { refused, caller } = await authorize(req.headers, route, peer);
      if (refused !== undefined)
        return rawReply(socket, refused, refused === 401 ? 'www-authenticate: Bearer\r\n' : '');
      if (route.kind !== 'tunnel') {
        unknownTarget(route.kind === 'unknown-target' ? route.requested : '', peer);
        return rawReply(socket, 404);
      }
      const upstream = await dialTarget(route.target, route.requested, peer);
      if (!upstream) return rawReply(socket, 502);
      if (socket.destroyed) return void upstream.destroy();
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      await runTunnel({ stream: socket, reset: resetSocket(socket) }, upstream, {
        requested: route.requested,
        peer,
        caller,
        transport: 'connect',
        forwardedFor: first(req.headers['x-forwarded-for']),
      });
    })().catch((err: Error) => {
      log.error('CONNECT failed', { error: err.message });
      socket.destroy();
    });
  });
  h1.on('clientError', (_err: Error, socket: Duplex) => rawReply(socket, 400));

  // --- the port

  const listener = createListener(options.tls ? { tls: options.tls } : {}, {
    h2: (socket) => h2.emit('connection', socket),
    h1: (socket) => h1.emit('connection', socket),
  });
  listener.on('connection', (socket: Socket) => {
    acceptedConnections += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const address = await listenOn(listener, options.listen.port, options.listen.host ?? '0.0.0.0');
  log.info('HBONE server listening', { address: boundAddress(address), tls: secure });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      listener.close(() => resolve());
      for (const session of sessions) session.destroy();
      for (const stream of tunnelStreams) stream.destroy();
      for (const socket of sockets) socket.destroy();
      wss?.close();
      proxy?.close();
    });
    return closing;
  };
  options.signal?.addEventListener('abort', () => void close(), { once: true });

  return {
    address,
    url: `${secure ? 'https' : 'http'}://${boundAddress(address)}`,
    get openTunnels() {
      return openTunnels;
    },
    get acceptedConnections() {
      return acceptedConnections;
    },
    whenIdle: () => (openTunnels === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    close,
  };
}
