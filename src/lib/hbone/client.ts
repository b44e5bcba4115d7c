// The tunnel client behind `krun hbone`: one HTTP/2 connection per service (TLS with ALPN h2, or cleartext with
// prior knowledge for http:// URLs) carrying any number of tunnels as `POST /_hbone/<target>` streams. When HTTP/2
// is not available end to end (ALPN picks http/1.1, the cleartext server does not speak HTTP/2, or the server
// answers 426 because a front end downgraded the request), tunnels go over WebSocket instead, announced on stderr.
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  connect as http2Connect,
  type IncomingHttpHeaders,
} from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { TransportError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { SESSION_WINDOW, STREAM_WINDOW } from './h2-windows.ts';
import type { TokenSource } from './token.ts';
import { tunnelPath } from './url.ts';
import { MAX_MESSAGE_BYTES, WebSocketDuplex } from './websocket.ts';

export type TransportMode = 'auto' | 'h2' | 'websocket';

export interface HboneClientOptions {
  readonly origin: URL;
  readonly tokens: TokenSource;
  readonly log: Logger;
  /** Extra trusted CA certificates (PEM) for https origins, besides the system's. */
  readonly ca?: string;
  readonly transport?: TransportMode;
}

/** A tunnel: bytes both ways, end() half-closes, and `reset` aborts it the way its transport does. */
export interface Tunnel {
  readonly stream: Duplex;
  readonly reset: () => void;
  readonly via: 'h2' | 'websocket';
  /** The instance that answered, when the server says (`krun-instance`). */
  readonly instance?: string;
}

/** The server can't carry HTTP/2 end to end; a WebSocket may still work. */
class NoHttp2Error extends Error {}

/** The HTTP status a refused tunnel request got, when it got one. */
export function tunnelStatus(err: unknown): number | undefined {
  const status = (err as { httpStatus?: unknown }).httpStatus;
  return typeof status === 'number' ? status : undefined;
}

function statusError(status: number, target: string, origin: URL): TransportError {
  return Object.assign(statusMessage(status, target, origin), { httpStatus: status });
}

function statusMessage(status: number, target: string, origin: URL): TransportError {
  const where = `${origin.origin}${tunnelPath(target)}`;
  switch (status) {
    case 401:
      return new TransportError(`${where} rejected the credentials (HTTP 401)`, {
        hints: [
          'gcloud auth application-default login',
          'check that the token audience is the service URL (--audience)',
        ],
      });
    case 403:
      return new TransportError(`permission denied for ${where} (HTTP 403)`, {
        hints: ["grant your account roles/run.invoker on the service, or check the server's allowed principals"],
      });
    case 404:
      return new TransportError(`no tunnel target "${target}" at ${origin.origin} (HTTP 404)`, {
        hints: ['use 22 (SSH), 15003 (mesh mTLS), the app port, or a name the workload defines with PORT_<name>'],
      });
    case 502:
      return new TransportError(`the server can't reach tunnel target "${target}" (HTTP 502)`, {
        hints: ['check that the target is listening inside the workload'],
      });
    default:
      return new TransportError(`${where} answered HTTP ${status} instead of opening a tunnel`);
  }
}

function connectError(origin: URL, err: Error): TransportError {
  return new TransportError(`can't connect to ${origin.origin}: ${err.message}`, { cause: err });
}

/** `GET /_hbone/`: 204 when the server got it over HTTP/2, 426 over HTTP/1.1; anything else says nothing. */
function probe(session: ClientHttp2Session, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'GET', ':path': '/_hbone/', ...headers }, { endStream: true });
    stream.once('response', (h: IncomingHttpHeaders) => resolve(Number(h[':status'])));
    stream.once('error', () => resolve(0));
    stream.once('close', () => resolve(0));
    stream.resume();
  });
}

export class HboneClient {
  readonly #options: HboneClientOptions;
  #mode: 'h2' | 'websocket' | undefined;
  #session: Promise<ClientHttp2Session> | undefined;
  #current: ClientHttp2Session | undefined;
  #probed = false;
  readonly #sessions = new Set<ClientHttp2Session>();
  readonly #tunnels = new Set<Duplex>();

  constructor(options: HboneClientOptions) {
    this.#options = options;
    if (options.transport === 'websocket') this.#mode = 'websocket';
    if (options.transport === 'h2') this.#mode = 'h2';
  }

  /** Opens a tunnel to `target` (`22`, a name, `host:port`); throws TransportError when the server refuses. */
  async open(target: string): Promise<Tunnel> {
    const headers = await this.#authHeaders();
    if (this.#mode !== 'websocket') {
      try {
        const session = await this.#connection(headers);
        return await this.#openH2(session, target, headers);
      } catch (err) {
        if (!(err instanceof NoHttp2Error) || this.#options.transport === 'h2') {
          throw err instanceof NoHttp2Error ? new TransportError(err.message) : err;
        }
        this.#options.log.warn(`${err.message}; falling back to WebSocket`, { origin: this.#options.origin.origin });
        this.#mode = 'websocket';
      }
    }
    return this.#openWebSocket(target, headers);
  }

  /** Closes the connection; open tunnels are torn down. */
  close(): void {
    for (const session of this.#sessions) session.destroy();
    for (const tunnel of this.#tunnels) tunnel.destroy();
  }

  async #authHeaders(): Promise<Record<string, string>> {
    const token = await this.#options.tokens.token();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  #track(stream: Duplex): void {
    this.#tunnels.add(stream);
    stream.once('close', () => this.#tunnels.delete(stream));
  }

  async #openH2(session: ClientHttp2Session, target: string, headers: Record<string, string>): Promise<Tunnel> {
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(
        { ':method': 'POST', ':path': tunnelPath(target), 'content-type': 'application/octet-stream', ...headers },
        { endStream: false },
      );
    } catch (err) {
      throw connectError(this.#options.origin, err as Error);
    }
    let instance: string | undefined;
    const status = await new Promise<number>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new TransportError(`tunnel request failed: ${err.message}`, { cause: err }));
      const onClose = () => reject(new TransportError(`the server closed the tunnel request (code ${stream.rstCode})`));
      stream.once('error', onError);
      stream.once('close', onClose);
      stream.once('response', (h: IncomingHttpHeaders) => {
        stream.off('error', onError);
        stream.off('close', onClose);
        const named = h['krun-instance'];
        instance = typeof named === 'string' ? named : undefined;
        resolve(Number(h[':status']));
      });
    });
    if (status !== 200) {
      stream.close(constants.NGHTTP2_CANCEL);
      if (status === 426) throw new NoHttp2Error('the server only accepts tunnels over WebSocket (HTTP 426)');
      throw statusError(status, target, this.#options.origin);
    }
    stream.on('error', () => {});
    this.#track(stream);
    this.#mode = 'h2';
    return {
      stream,
      via: 'h2',
      ...(instance ? { instance } : {}),
      // destroy() sends RST_STREAM at once; close(code) would send END_STREAM first and look like a clean end.
      reset: () => stream.destroy(new Error('tunnel reset')),
    };
  }

  /** The shared HTTP/2 connection, (re)established on demand. */
  #connection(headers: Record<string, string>): Promise<ClientHttp2Session> {
    this.#session ??= this.#connect(headers).catch((err: unknown) => {
      this.#session = undefined;
      throw err;
    });
    return this.#session;
  }

  async #connect(headers: Record<string, string>): Promise<ClientHttp2Session> {
    const { origin } = this.#options;
    const secure = origin.protocol === 'https:';
    const port = Number(origin.port || (secure ? 443 : 80));
    const host = origin.hostname.replace(/^\[(.*)\]$/, '$1');
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s: Socket | TLSSocket = secure
        ? tlsConnect({
            host,
            port,
            servername: /^[\d.]+$|:/.test(host) ? undefined : host,
            ALPNProtocols: ['h2', 'http/1.1'],
            ...(this.#options.ca ? { ca: this.#options.ca } : {}),
          })
        : netConnect({ host, port });
      s.once('error', (err) => reject(connectError(origin, err)));
      s.once(secure ? 'secureConnect' : 'connect', () => resolve(s));
    });
    socket.setNoDelay(true);
    if (secure && (socket as TLSSocket).alpnProtocol !== 'h2') {
      socket.destroy();
      throw new NoHttp2Error(
        `${origin.origin} does not offer HTTP/2 (ALPN: ${(socket as TLSSocket).alpnProtocol || 'none'})`,
      );
    }
    const session = http2Connect(origin, {
      createConnection: () => socket,
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
    });
    this.#sessions.add(session);
    const forget = () => {
      this.#sessions.delete(session);
      if (this.#session && this.#current === session) this.#session = undefined;
    };
    session.on('close', forget);
    session.on('goaway', forget);
    session.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('close', () =>
        reject(
          secure
            ? connectError(origin, new Error('the connection closed before HTTP/2 started'))
            : new NoHttp2Error(`${origin.origin} does not speak HTTP/2 with prior knowledge`),
        ),
      );
    });
    session.setLocalWindowSize(SESSION_WINDOW);
    this.#current = session;
    if (this.#options.transport !== 'h2' && !this.#probed) {
      // A front end that speaks HTTP/1.1 to the server may hold a request until its body ends, so a tunnel request
      // would wait forever for its answer. The bodiless probe gets through any front end and tells the two apart.
      const status = await probe(session, headers);
      this.#probed = true;
      if (status === 426) {
        session.close();
        throw new NoHttp2Error('HTTP/2 does not reach the server end to end (HTTP 426)');
      }
    }
    return session;
  }

  async #openWebSocket(target: string, headers: Record<string, string>): Promise<Tunnel> {
    const { WebSocket } = await import('ws');
    const url = new URL(tunnelPath(target), this.#options.origin);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url, {
      headers,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE_BYTES,
      ...(this.#options.ca ? { ca: this.#options.ca } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        ws.terminate();
        reject(statusError(res.statusCode ?? 0, target, this.#options.origin));
      });
      ws.once('error', (err) => reject(connectError(this.#options.origin, err)));
    });
    const stream = new WebSocketDuplex(ws);
    this.#track(stream);
    return { stream, via: 'websocket', reset: () => ws.terminate() };
  }
}
