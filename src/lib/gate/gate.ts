// The gate's traffic port: raw TLS from mesh clients. Each connection's ClientHello is read (never terminated), its
// SNI mapped to a registered Cloud Run service, and the connection's bytes, ClientHello first, tunnelled there as
// one HTTP/2 stream of that service's connection pool. TLS stays end to end between the client and the workload.
// Anything that is not a usable ClientHello, or names no registered service, is closed at once with a logged reason.
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { splice } from '../hbone/pipe.ts';
import type { TokenSource } from '../hbone/token.ts';
import type { Logger } from '../log/logger.ts';
import { listenOn } from '../net/listen.ts';
import { MAX_PENDING_HELLOS, REFUSAL_LOG, type TunnelMethod } from './defaults.ts';
import type { Metrics } from './metrics.ts';
import { ConnectionPool, TunnelError } from './pool.ts';
import { readClientHello } from './read-hello.ts';
import { RefusalLog } from './refusal-log.ts';
import type { Resolution } from './registry.ts';

export interface GateOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly resolve: (sni: string) => Promise<Resolution>;
  /** The Google ID token source for a service origin (its audience). */
  readonly tokensFor: (origin: string) => TokenSource;
  /** The HBONE target of the tunnels: what `/_hbone/<target>` the workload serves the mesh port as. */
  readonly target: string;
  /** POST /_hbone/TARGET unless told otherwise. */
  readonly tunnelMethod?: TunnelMethod;
  readonly maxStreams: number;
  readonly keepAliveMs: number;
  readonly helloTimeoutMs: number;
  /** Connections reading their ClientHello at once, at most (MAX_PENDING_HELLOS). */
  readonly maxPendingHellos?: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Refused connections logged in full per reason and window; the rest are summed up in one line. */
  readonly refusalLog?: { readonly perWindow: number; readonly windowMs: number };
}

export interface Gate {
  readonly address: AddressInfo;
  readonly openTunnels: number;
  readonly draining: boolean;
  /** Stops accepting, lets open tunnels finish for up to `graceMs`, then closes the rest; resolves when done. */
  drain(graceMs: number): Promise<{ readonly forced: number }>;
}

export async function startGate(options: GateOptions): Promise<Gate> {
  const { log, metrics } = options;
  const pools = new Map<string, ConnectionPool>();
  const sockets = new Set<Socket>();
  const active = new Map<string, number>();
  let draining = false;
  let pendingHellos = 0;
  let idle: (() => void)[] = [];

  const accepted = metrics.counter('krun_gate_connections_total', 'Client connections accepted.');
  const rejected = metrics.counter(
    'krun_gate_rejected_total',
    'Client connections closed before a tunnel: not TLS, malformed, oversized, no SNI, unknown SNI, timeout, busy.',
  );
  const tunnels = metrics.counter('krun_gate_tunnels_total', 'Tunnels opened, per destination.');
  const errors = metrics.counter(
    'krun_gate_tunnel_errors_total',
    'Tunnels that could not open or broke, per destination and reason.',
  );
  const bytes = metrics.counter('krun_gate_bytes_total', 'Bytes tunnelled, per destination and direction.');
  const connects = metrics.counter(
    'krun_gate_upstream_connects_total',
    'HTTP/2 connections opened to Cloud Run, per destination.',
  );
  metrics.gauge('krun_gate_tunnels_active', 'Tunnels open now, per destination.', () =>
    [...active].map(([destination, n]) => [{ destination }, n] as const),
  );
  metrics.gauge('krun_gate_upstream_connections', 'HTTP/2 connections to Cloud Run open now, per destination.', () =>
    [...pools].map(([destination, p]) => [{ destination }, p.connections] as const),
  );

  const poolFor = (origin: string): ConnectionPool => {
    let pool = pools.get(origin);
    if (!pool) {
      pool = new ConnectionPool({
        origin,
        target: options.target,
        ...(options.tunnelMethod ? { method: options.tunnelMethod } : {}),
        tokens: options.tokensFor(origin),
        log,
        maxStreams: options.maxStreams,
        keepAliveMs: options.keepAliveMs,
        onConnect: () => connects({ destination: origin }),
      });
      pools.set(origin, pool);
    }
    return pool;
  };

  const refusals = new RefusalLog({ log, ...(options.refusalLog ?? REFUSAL_LOG) });
  const refuse = (socket: Socket, reason: string, fields: Record<string, unknown>) => {
    rejected({ reason });
    refusals.refused(reason === 'closed' ? 'debug' : 'warn', reason, fields);
    socket.destroy();
  };

  const handle = async (socket: Socket): Promise<void> => {
    accepted();
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (pendingHellos >= (options.maxPendingHellos ?? MAX_PENDING_HELLOS)) {
      return refuse(socket, 'busy', { peer, detail: `${pendingHellos} connections are still sending a ClientHello` });
    }
    pendingHellos++;
    const hello = await readClientHello(socket, options.helloTimeoutMs);
    pendingHellos--;
    if (!hello.ok) return refuse(socket, hello.reason, { peer, detail: hello.detail });
    const sni = hello.serverName;
    const route = await options
      .resolve(sni)
      .catch((err: Error): Resolution => ({ ok: false, reason: `cannot look up ${sni}: ${err.message}` }));
    if (!route.ok) return refuse(socket, 'unknown-sni', { peer, sni, detail: route.reason });
    const destination = route.destination.origin;
    let stream: Awaited<ReturnType<ConnectionPool['open']>>;
    try {
      stream = await poolFor(destination).open();
    } catch (err) {
      errors({ destination, reason: err instanceof TunnelError ? err.reason : 'stream' });
      log.error('tunnel not opened', { peer, sni, destination, error: (err as Error).message });
      socket.destroy();
      return;
    }
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    tunnels({ destination });
    active.set(destination, (active.get(destination) ?? 0) + 1);
    log.debug('tunnel open', { peer, sni, alpn: hello.alpn, destination, via: route.destination.source });
    stream.write(hello.bytes);
    const result = await splice(
      { stream: socket, reset: () => socket.resetAndDestroy() },
      { stream, reset: (cause) => stream.destroy(cause) },
    );
    bytes({ destination, direction: 'to_service' }, hello.bytes.length + result.aToB);
    bytes({ destination, direction: 'to_client' }, result.bToA);
    if (result.error) errors({ destination, reason: 'broken' });
    const left = (active.get(destination) ?? 1) - 1;
    active.set(destination, left);
    log.debug('tunnel closed', {
      peer,
      destination,
      sent: hello.bytes.length + result.aToB,
      received: result.bToA,
      ...(result.error ? { error: result.error.message } : {}),
    });
    if (openTunnels() === 0) {
      for (const wake of idle) wake();
      idle = [];
    }
  };

  const openTunnels = () => [...active.values()].reduce((a, b) => a + b, 0);

  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    handle(socket).catch((err: Error) => {
      log.error('connection failed', { error: err.message });
      socket.destroy();
    });
  });
  const address = await listenOn(server, options.listen.port, options.listen.host);

  return {
    address,
    get openTunnels() {
      return openTunnels();
    },
    get draining() {
      return draining;
    },
    async drain(graceMs) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Connections still reading their ClientHello have no tunnel to finish.
      const idleNow = openTunnels() === 0 ? Promise.resolve() : new Promise<void>((r) => idle.push(r));
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((r) => {
        timer = setTimeout(r, graceMs);
      });
      await Promise.race([idleNow, graceOver]);
      clearTimeout(timer);
      const forced = openTunnels();
      for (const socket of sockets) socket.destroy();
      for (const pool of pools.values()) pool.close();
      refusals.flush();
      await closed;
      return { forced };
    },
  };
}
