// The gate's HTTP/2 connections to one Cloud Run service: tunnels are streams (`POST /_hbone/TARGET` with the gate's
// Google ID token for the URL), many to a connection, up to a cap per connection (and the server's own limit);
// another connection opens only when every one is full. Idle connections are pinged so dead ones are found before a
// tunnel needs them; a connection that dies or is told to go away is dropped, and the next tunnel reconnects.
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  connect as http2Connect,
  type IncomingHttpHeaders,
} from 'node:http2';
import { TransportError } from '../errors.ts';
import { SESSION_WINDOW, STREAM_WINDOW } from '../hbone/h2-windows.ts';
import type { TokenSource } from '../hbone/token.ts';
import type { Logger } from '../log/logger.ts';
import type { TunnelMethod } from './defaults.ts';
import { type TunnelRequest, tunnelRequest } from './tunnel-method.ts';

export interface PoolOptions {
  /** `https://service-host`. */
  readonly origin: string;
  /** The target the tunnels ask for: `/_hbone/<target>`, or the CONNECT authority. */
  readonly target: string;
  /** POST /_hbone/TARGET (default; what Cloud Run's front end passes) or HTTP/2 CONNECT. */
  readonly method?: TunnelMethod;
  readonly tokens: TokenSource;
  readonly log: Logger;
  /** Streams per connection before another connection opens. */
  readonly maxStreams: number;
  /** Ping interval of each connection; a ping unanswered within the interval closes it. */
  readonly keepAliveMs: number;
  /** A connection with no tunnel for this long is closed (a destination nobody calls any more holds nothing). */
  readonly idleMs?: number;
  /** Counts each HTTP/2 connection opened. */
  readonly onConnect?: () => void;
}

/**
 * A tunnel that did not open, and why, for metrics: the HTTP status the service answered (`403`: the gate's identity
 * may not invoke it), `token` (no ID token), `connect` (no HTTP/2 connection) or `stream` (the request failed).
 */
export class TunnelError extends TransportError {
  readonly reason: string;
  constructor(message: string, reason: string, cause?: unknown) {
    super(message, cause === undefined ? {} : { cause });
    this.reason = reason;
  }
}

interface Connection {
  readonly session: ClientHttp2Session;
  streams: number;
  usable: boolean;
  idleSince: number;
}

const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_MS = 5 * 60_000;

function refusal(status: number, url: string, method: TunnelMethod): TunnelError {
  const why =
    status === 401 || status === 403
      ? `the gate's identity may not invoke ${url} (HTTP ${status}): grant it roles/run.invoker on the service`
      : status === 404
        ? `${url} has no such tunnel target (HTTP 404): is the service running krun with the mesh port?`
        : method === 'connect' && (status === 405 || status === 400 || status === 501)
          ? `${url}: HTTP ${status}, the way there does not pass HTTP/2 CONNECT (Cloud Run's front end does not); use --tunnel-method post`
          : `${url} answered HTTP ${status} instead of opening a tunnel`;
  return new TunnelError(why, String(status));
}

export class ConnectionPool {
  readonly #options: PoolOptions;
  readonly #tunnel: TunnelRequest;
  readonly #connections: Connection[] = [];
  #connecting: Promise<Connection> | undefined;
  #closed = false;

  constructor(options: PoolOptions) {
    this.#options = options;
    this.#tunnel = tunnelRequest(options.method ?? 'post', options.origin, options.target);
  }

  /** HTTP/2 connections open now. */
  get connections(): number {
    return this.#connections.length;
  }

  /** Opens a tunnel: the stream once the service answered 200. */
  async open(): Promise<ClientHttp2Stream> {
    const { tokens } = this.#options;
    const token = await this.#token();
    try {
      return await this.#open(token);
    } catch (err) {
      // A 401 says the token itself was refused (revoked, or its signing key rotated) even though our cache still
      // holds it: drop it and retry once with a fresh one. A second 401 is the caller's to report.
      if ((err as TunnelError).reason !== '401' || !token || !tokens.invalidate || this.#closed) throw err;
      this.#options.log.debug('the service refused the ID token; retrying with a fresh one', {
        origin: this.#options.origin,
      });
      tokens.invalidate(token);
      return await this.#open(await this.#token());
    }
  }

  #token(): Promise<string | undefined> {
    return this.#options.tokens.token().catch((err: Error) => {
      throw new TunnelError(err.message, 'token', err);
    });
  }

  async #open(token: string | undefined): Promise<ClientHttp2Stream> {
    const headers = { ...this.#tunnel.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) };
    // A connection may go away between picking it and using it; one retry on a fresh one covers that race.
    for (let attempt = 0; ; attempt++) {
      const connection = await this.#reserve();
      try {
        return await this.#request(connection, headers);
      } catch (err) {
        if (/^\d+$/.test((err as TunnelError).reason) || attempt > 0 || this.#closed) throw err;
        // Take no new tunnels on it; it closes once its own are done.
        this.#retire(connection);
      }
    }
  }

  /** Closes the connections: streams still open are torn down. */
  close(): void {
    this.#closed = true;
    for (const c of this.#connections.splice(0)) c.session.destroy();
  }

  async #request(connection: Connection, headers: Record<string, string>): Promise<ClientHttp2Stream> {
    const url = this.#tunnel.describe;
    let stream: ClientHttp2Stream;
    try {
      stream = connection.session.request(headers, { endStream: false });
    } catch (err) {
      this.#release(connection);
      throw new TunnelError(`can't open a stream to ${url}: ${(err as Error).message}`, 'stream', err);
    }
    // Errors are seen through 'close' and the splice; an 'error' with no listener would end the process.
    stream.on('error', () => {});
    stream.once('close', () => this.#release(connection));
    const status = await new Promise<number>((resolve, reject) => {
      const onError = (err: Error) => reject(new TunnelError(`tunnel request failed: ${err.message}`, 'stream', err));
      const onClose = () =>
        reject(new TunnelError(`${url} closed the tunnel request (code ${stream.rstCode})`, 'stream'));
      stream.once('error', onError);
      stream.once('close', onClose);
      stream.once('response', (h: IncomingHttpHeaders) => {
        stream.off('error', onError);
        stream.off('close', onClose);
        resolve(Number(h[':status']));
      });
    });
    if (status !== 200) {
      stream.close(constants.NGHTTP2_CANCEL);
      throw refusal(status, url, this.#options.method ?? 'post');
    }
    return stream;
  }

  /**
   * A usable connection with room for a stream, the stream already counted (so tunnels opening at the same time never
   * overfill one), or a new one. A connection attempt is shared by everyone waiting; its failure is theirs.
   */
  async #reserve(): Promise<Connection> {
    for (;;) {
      if (this.#closed) throw new TunnelError('the gate is shutting down', 'closing');
      const free = this.#connections.find((c) => c.usable && c.streams < this.#limit(c));
      if (free) {
        free.streams += 1;
        return free;
      }
      this.#connecting ??= this.#connect().finally(() => {
        this.#connecting = undefined;
      });
      await this.#connecting;
    }
  }

  #limit(c: Connection): number {
    const remote = c.session.remoteSettings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
    return Math.min(this.#options.maxStreams, remote);
  }

  #connect(): Promise<Connection> {
    const { origin, log } = this.#options;
    return new Promise((resolve, reject) => {
      const session = http2Connect(origin, {
        settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
      });
      const connection: Connection = { session, streams: 0, usable: false, idleSince: Date.now() };
      const timer = setTimeout(
        () => fail(new Error(`no HTTP/2 session within ${CONNECT_TIMEOUT_MS} ms`)),
        CONNECT_TIMEOUT_MS,
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        session.destroy();
        reject(new TunnelError(`can't connect to ${origin}: ${err.message}`, 'connect', err));
      };
      session.once('error', fail);
      session.once('close', () => fail(new Error('the connection closed before HTTP/2 started')));
      session.once('remoteSettings', () => {
        clearTimeout(timer);
        session.off('error', fail);
        session.removeAllListeners('close');
        session.on('error', (err: Error) => log.debug('upstream connection error', { origin, error: err.message }));
        session.setLocalWindowSize(SESSION_WINDOW);
        connection.usable = true;
        session.on('goaway', () => {
          connection.usable = false;
        });
        session.on('close', () => this.#drop(connection));
        this.#keepAlive(connection);
        this.#connections.push(connection);
        this.#options.onConnect?.();
        log.debug('upstream connected', { origin, connections: this.#connections.length });
        resolve(connection);
      });
    });
  }

  #keepAlive(connection: Connection): void {
    const { keepAliveMs, log, origin } = this.#options;
    const idleMs = this.#options.idleMs ?? IDLE_MS;
    const timer = setInterval(() => {
      if (connection.session.destroyed) return clearInterval(timer);
      if (connection.streams === 0 && Date.now() - connection.idleSince >= idleMs) {
        log.debug('upstream connection idle; closing', { origin });
        this.#drop(connection);
        return;
      }
      let answered = false;
      let ok: boolean;
      try {
        ok = connection.session.ping((err) => {
          answered = true;
          if (err) this.#drop(connection);
        });
      } catch {
        return this.#drop(connection);
      }
      if (!ok) return;
      setTimeout(() => {
        if (answered || connection.session.destroyed) return;
        log.warn('upstream connection unresponsive; reconnecting', { origin });
        this.#drop(connection);
      }, keepAliveMs).unref();
    }, keepAliveMs);
    timer.unref();
    connection.session.once('close', () => clearInterval(timer));
  }

  #release(connection: Connection): void {
    connection.streams -= 1;
    if (connection.streams === 0) connection.idleSince = Date.now();
    if (!connection.usable && connection.streams === 0) this.#drop(connection);
  }

  #retire(connection: Connection): void {
    connection.usable = false;
    if (connection.streams === 0) this.#drop(connection);
  }

  #drop(connection: Connection): void {
    connection.usable = false;
    const i = this.#connections.indexOf(connection);
    if (i >= 0) this.#connections.splice(i, 1);
    if (!connection.session.destroyed) connection.session.destroy();
  }
}
