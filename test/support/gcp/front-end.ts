// The Cloud Run front end: an HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN, certificates from a test CA) that routes
// `<service>-<hash>-<region>.a.run.app` and `<service>-<number>.<region>.run.app` hosts to the local port the test
// registered for the service, enforcing Cloud Run IAM on the way: a Google-signed ID token for the service's URL
// from a principal with run.routes.invoke, unless allUsers may invoke it or IAM invoker checks are disabled.
// Services on HTTP/2 (`h2c` port) get HTTP/2 cleartext with prior knowledge; the others HTTP/1.1, with WebSocket
// upgrades passed through. Bodies stream both ways, as krun's HBONE tunnels need.
import { randomBytes } from 'node:crypto';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import {
  type ClientHttp2Session,
  constants,
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  connect as http2Connect,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type SecureContext, type TLSSocket } from 'node:tls';
import type { CertificateAuthority } from '../pki.ts';
import type { GcpState, RunService } from './state.ts';
import { memberFor } from './state.ts';
import { IdTokenError, type TokenIssuer } from './tokens.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings',
  'host',
]);

export interface FrontEnd {
  readonly port: number;
  /** The URL to reach a service URL's host through this listener: `https://<host>:<port>`. */
  local(serviceUrl: string): string;
  /** TLS connections accepted so far (how many connections clients opened). */
  connectionsAccepted(): number;
  /** The distinct ID tokens requests were admitted with, oldest first. */
  tokensAdmitted(): readonly string[];
  /** From now on every token admitted so far is refused with 401, as Google does with a token it no longer honours. */
  revokeAdmitted(): void;
  /** The distinct ID tokens refused with 401, oldest first. */
  tokensRefused(): readonly string[];
  close(): Promise<void>;
}

type Verdict = { ok: true; service: RunService } | { ok: false; status: number; headers?: Record<string, string> };

function page(status: number, path: string): string {
  const [title, heading, detail] =
    status === 401
      ? [
          '401 Unauthorized',
          'Error: Unauthorized',
          `Your client does not have permission to the requested URL <code>${path}</code>.`,
        ]
      : status === 403
        ? [
            '403 Forbidden',
            'Error: Forbidden',
            `Your client does not have permission to get URL <code>${path}</code> from this server.`,
          ]
        : status === 404
          ? ['404 Page not found', 'Error: Page not found', 'The requested URL was not found on this server.']
          : [
              '503 Service Unavailable',
              'Error: Service Unavailable',
              'The service you requested is not available yet.',
            ];
  return (
    '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n' +
    `<title>${title}</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>${heading}</h1>\n` +
    `<h2>${detail}</h2>\n<h2></h2>\n</body></html>\n`
  );
}

function hostOf(headers: IncomingHttpHeaders): string {
  const authority = headers[':authority'] ?? headers.host ?? '';
  const host = Array.isArray(authority) ? (authority[0] ?? '') : authority;
  return host.replace(/:\d+$/, '').toLowerCase();
}

function bearerOf(value: string | string[] | undefined): string | undefined {
  const header = Array.isArray(value) ? value[0] : value;
  return header ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
}

/** Cloud Run's IAM check for a request to `host`. */
function admit(
  state: GcpState,
  issuer: TokenIssuer,
  host: string,
  headers: IncomingHttpHeaders,
  admitted: Set<string>,
  revoked: Set<string>,
  refused: Set<string>,
): Verdict {
  const service = state.runServiceForHost(host);
  // Ingress other than "all" admits only VPC / load balancer traffic, which never reaches this listener.
  if (service?.ingress !== 'INGRESS_TRAFFIC_ALL') return { ok: false, status: 404 };
  const key = state.runServiceName(service);
  const resources = [key, `projects/${service.projectId}`];
  if (service.invokerIamDisabled || state.allows(undefined, 'run.routes.invoke', resources)) {
    return { ok: true, service };
  }
  // X-Serverless-Authorization takes precedence, leaving Authorization to the application.
  const token = bearerOf(headers['x-serverless-authorization']) ?? bearerOf(headers.authorization);
  if (!token) return { ok: false, status: 403 };
  const audiences = state.runServiceUrls(service).flatMap((u) => [u, `${u}/`]);
  let member: string;
  try {
    if (revoked.has(token)) throw new IdTokenError('revoked');
    const claims = issuer.verify(token, [...audiences, ...service.customAudiences]);
    const email = claims.email ?? state.serviceAccount(claims.sub)?.email;
    if (!email) return { ok: false, status: 403 };
    member = memberFor(email);
  } catch (err) {
    if (!(err instanceof IdTokenError)) throw err;
    refused.add(token);
    return {
      ok: false,
      status: 401,
      headers: {
        'www-authenticate': 'Bearer error="invalid_token" error_description="The access token could not be verified"',
      },
    };
  }
  if (!state.allows(member, 'run.routes.invoke', resources)) return { ok: false, status: 403 };
  admitted.add(token);
  return { ok: true, service };
}

function traceHeaders(remote: string | undefined): Record<string, string> {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8);
  return {
    'x-forwarded-for': remote ?? '127.0.0.1',
    'x-forwarded-proto': 'https',
    forwarded: `for="${remote ?? '127.0.0.1'}";proto=https`,
    'x-cloud-trace-context': `${traceId}/${spanId.readBigUInt64BE()};o=1`,
    traceparent: `00-${traceId}-${spanId.toString('hex')}-01`,
  };
}

/** Request headers for the container: no hop-by-hop or pseudo headers; the signature of a serverless token is cut. */
function forwardHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':') || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  const serverless = headers['x-serverless-authorization'];
  if (typeof serverless === 'string') out['x-serverless-authorization'] = serverless.replace(/\.[^.]+$/, '.');
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders | OutgoingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':') || HOP_BY_HOP.has(name)) continue;
    out[name] = typeof value === 'number' ? String(value) : value;
  }
  return out;
}

// Flow-control windows of a Google front end's size, both ways: Node's 64 KiB defaults would make every tunnel
// through this proxy crawl (one window per round trip), which Cloud Run's does not.
const STREAM_WINDOW = 4 << 20;
const SESSION_WINDOW = 32 << 20;

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

export async function startFrontEnd(state: GcpState, issuer: TokenIssuer, ca: CertificateAuthority): Promise<FrontEnd> {
  const contexts = new Map<string, Promise<SecureContext>>();
  const contextFor = (host: string): Promise<SecureContext> => {
    let ctx = contexts.get(host);
    if (!ctx) {
      ctx = ca
        .issue({ commonName: host, hosts: [host], usage: 'server' })
        .then((c) => createSecureContext({ key: c.keyPem, cert: c.chainPem }));
      contexts.set(host, ctx);
    }
    return ctx;
  };
  const fallback = await ca.issue({ commonName: 'localhost', hosts: ['localhost', '127.0.0.1'], usage: 'server' });

  const admitted = new Set<string>();
  const revoked = new Set<string>();
  const refused = new Set<string>();
  const sessions = new Map<number, ClientHttp2Session>();
  const h2cSession = (port: number): ClientHttp2Session => {
    const existing = sessions.get(port);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const session = http2Connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: STREAM_WINDOW } });
    session.on('connect', () => session.setLocalWindowSize(SESSION_WINDOW));
    session.on('error', () => sessions.delete(port));
    session.on('close', () => sessions.delete(port));
    sessions.set(port, session);
    return session;
  };

  const refuse = (res: AnyResponse, status: number, path: string, headers: Record<string, string> = {}) => {
    const body = page(status, path);
    (res as ServerResponse).writeHead(status, {
      'content-type': 'text/html; charset=UTF-8',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  };

  const onRequest = (req: AnyRequest, res: AnyResponse): void => {
    const path = req.url ?? '/';
    const verdict = admit(state, issuer, hostOf(req.headers), req.headers, admitted, revoked, refused);
    if (!verdict.ok) {
      refuse(res, verdict.status, path.split('?')[0] ?? '/', verdict.headers);
      req.resume();
      return;
    }
    const { service } = verdict;
    if (service.backendPort === undefined) {
      refuse(res, 503, path);
      req.resume();
      return;
    }
    const headers = { ...forwardHeaders(req.headers), ...traceHeaders(req.socket?.remoteAddress) };
    const fail = () => {
      if (!res.headersSent) refuse(res, 503, path);
      else res.destroy();
    };
    if (service.http2) {
      let upstream: ReturnType<ClientHttp2Session['request']>;
      try {
        upstream = h2cSession(service.backendPort).request({
          ...headers,
          ':method': req.method ?? 'GET',
          ':path': path,
          ':scheme': 'http',
          ':authority': hostOf(req.headers),
        });
      } catch {
        fail();
        return;
      }
      upstream.on('response', (h) => {
        (res as ServerResponse).writeHead(Number(h[':status'] ?? 502), responseHeaders(h));
        // Headers go out now: a tunnel's first bytes may only come after the client sends its own.
        if ('flushHeaders' in res && typeof res.flushHeaders === 'function') res.flushHeaders();
        upstream.pipe(res as NodeJS.WritableStream);
      });
      upstream.on('error', fail);
      // The client is gone: reset the stream to the container. Not with NO_ERROR: Node then waits for the request
      // side to finish before sending RST_STREAM, and if the stream is destroyed first its session spins forever
      // sending empty DATA frames (Node 24's http2; the test process grew by gigabytes).
      res.on('close', () => upstream.close(constants.NGHTTP2_CANCEL));
      req.pipe(upstream);
    } else {
      const upstream = httpRequest(
        {
          host: '127.0.0.1',
          port: service.backendPort,
          method: req.method,
          path,
          headers: { ...headers, host: hostOf(req.headers) },
        },
        (back) => {
          (res as ServerResponse).writeHead(back.statusCode ?? 502, responseHeaders(back.headers));
          if ('flushHeaders' in res && typeof res.flushHeaders === 'function') res.flushHeaders();
          back.pipe(res as NodeJS.WritableStream);
        },
      );
      upstream.on('error', fail);
      res.on('close', () => upstream.destroy());
      req.pipe(upstream);
    }
  };

  const h1 = createHttpServer(onRequest);
  h1.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = req.url ?? '/';
    const verdict = admit(state, issuer, hostOf(req.headers), req.headers, admitted, revoked, refused);
    const status = verdict.ok ? (verdict.service.backendPort === undefined ? 503 : 0) : verdict.status;
    if (!verdict.ok || status !== 0 || verdict.service.backendPort === undefined) {
      const body = page(status, path);
      const extra = verdict.ok ? {} : (verdict.headers ?? {});
      const lines = Object.entries(extra).map(([k, v]) => `${k}: ${v}\r\n`);
      socket.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : 'Service Unavailable'}\r\n` +
          `content-type: text/html; charset=UTF-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${lines.join('')}connection: close\r\n\r\n${body}`,
      );
      return;
    }
    const upstream = netConnect(verdict.service.backendPort, '127.0.0.1', () => {
      const headers = { ...forwardHeaders(req.headers), ...traceHeaders(req.socket.remoteAddress) };
      let text = `${req.method} ${path} HTTP/1.1\r\nhost: ${hostOf(req.headers)}\r\n`;
      text += `connection: Upgrade\r\nupgrade: ${req.headers.upgrade ?? ''}\r\n`;
      for (const [name, value] of Object.entries(headers)) {
        for (const v of Array.isArray(value) ? value : [value]) text += `${name}: ${v}\r\n`;
      }
      upstream.write(`${text}\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  const h2 = createHttp2Server({ settings: { initialWindowSize: STREAM_WINDOW } }, onRequest);
  h2.on('session', (session) => session.on('connect', () => session.setLocalWindowSize(SESSION_WINDOW)));
  h2.on('sessionError', () => {});

  const tls = createTlsServer(
    {
      key: fallback.keyPem,
      cert: fallback.chainPem,
      ALPNProtocols: ['h2', 'http/1.1'],
      SNICallback: (servername, cb) => {
        contextFor(servername).then(
          (ctx) => cb(null, ctx),
          (err: Error) => cb(err),
        );
      },
    },
    (socket: TLSSocket) => {
      socket.on('error', () => socket.destroy());
      if (socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else h1.emit('connection', socket);
    },
  );
  tls.on('tlsClientError', () => {});

  await new Promise<void>((resolve, reject) => {
    tls.once('error', reject);
    tls.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = tls.address() as AddressInfo;
  const connections = new Set<Socket>();
  let accepted = 0;
  tls.on('connection', (s: Socket) => {
    accepted += 1;
    connections.add(s);
    s.on('close', () => connections.delete(s));
  });
  return {
    port,
    local(serviceUrl) {
      const url = new URL(serviceUrl);
      url.port = String(port);
      return url.toString().replace(/\/$/, '');
    },
    connectionsAccepted: () => accepted,
    tokensAdmitted: () => [...admitted],
    revokeAdmitted: () => {
      for (const token of admitted) revoked.add(token);
    },
    tokensRefused: () => [...refused],
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions.values()) session.destroy();
        for (const socket of connections) socket.destroy();
        tls.close(() => resolve());
      }),
  };
}
