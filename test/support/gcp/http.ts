// A small HTTP/JSON server for emulated Google APIs: routes by method and path pattern, Google's error body
// (`{"error":{"code","message","status"}}`), bearer-token authentication and IAM permission checks.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { GcpState } from './state.ts';
import { type AccessTokenClaims, verifyAccessToken } from './tokens.ts';

const HTTP_STATUS: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  OUT_OF_RANGE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  INTERNAL: 500,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
};

export type GoogleStatus = keyof typeof HTTP_STATUS;

/** An error the emulated API answers with, in Google's JSON error format. */
export class GoogleApiError extends Error {
  readonly status: string;
  readonly code: number;
  constructor(status: string, message: string) {
    super(message);
    this.status = status;
    this.code = HTTP_STATUS[status] ?? 500;
  }
}

export const notFound = (message: string): GoogleApiError => new GoogleApiError('NOT_FOUND', message);
export const invalidArgument = (message: string): GoogleApiError => new GoogleApiError('INVALID_ARGUMENT', message);

export interface Call {
  readonly method: string;
  /** Decoded path, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  /** The parsed JSON body (or form fields as an object), `{}` when there is none. */
  readonly body: Record<string, unknown>;
  /** The path pattern's capture groups. */
  readonly params: readonly string[];
  /** The verified access token's claims; throws 401 UNAUTHENTICATED without a valid one. */
  caller(): AccessTokenClaims;
  /** caller(), then 403 PERMISSION_DENIED unless it holds `permission` on one of `resources`. */
  authorize(permission: string, resources: readonly string[], shown?: string): AccessTokenClaims;
}

export interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  handle(call: Call): unknown;
}

/** A handler's answer with its own status and body (OAuth's `{"error","error_description"}`), sent as it is. */
export class Reply {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    this.status = status;
    this.body = body;
  }
}

export function route(method: string, pattern: RegExp, handle: (call: Call) => unknown): Route {
  return { method, pattern, handle };
}

export interface ApiServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

const UNAUTHENTICATED =
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid ' +
  'authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: GoogleApiError): void {
  sendJson(
    res,
    err.code,
    { error: { code: err.code, message: err.message, status: err.status } },
    err.status === 'UNAUTHENTICATED' ? { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' } : {},
  );
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(text: string, contentType: string | undefined): Record<string, unknown> {
  if (!text) return {};
  if (contentType?.startsWith('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {}
  throw invalidArgument(`Invalid JSON payload received. Unexpected token.\n${text.slice(0, 40)}`);
}

export function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

/**
 * Listens on 127.0.0.1, port 0, and answers `routes`; anything else is 404 NOT_FOUND. With `tls` (PEM key and
 * certificate chain), HTTPS.
 */
export function startApiServer(
  state: GcpState,
  tokenKey: string,
  routes: readonly Route[],
  { tls }: { tls?: { key: string; cert: string } } = {},
): Promise<ApiServer> {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    void dispatch(state, tokenKey, routes, req, res);
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
        server,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

async function dispatch(
  state: GcpState,
  tokenKey: string,
  routes: readonly Route[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = decodeURIComponent(url.pathname);
    const method = req.method ?? 'GET';
    let params: string[] | undefined;
    const found = routes.find((r) => {
      if (r.method !== method) return false;
      const m = r.pattern.exec(path);
      if (m) params = m.slice(1).map((p) => p ?? '');
      return m !== null;
    });
    const text = await readBody(req);
    if (!found || !params) throw notFound(`Method not found: ${method} ${path}`);
    const body = parseBody(text, req.headers['content-type']);
    const caller = (): AccessTokenClaims => {
      const token = bearer(req);
      const claims = token ? verifyAccessToken(tokenKey, token) : undefined;
      if (!claims) throw new GoogleApiError('UNAUTHENTICATED', UNAUTHENTICATED);
      return claims;
    };
    const call: Call = {
      method,
      path,
      query: url.searchParams,
      headers: req.headers,
      body,
      params,
      caller,
      authorize(permission, resources, shown) {
        const claims = caller();
        if (!state.allows(claims.member, permission, resources)) {
          throw new GoogleApiError(
            'PERMISSION_DENIED',
            `Permission '${permission}' denied on resource '${shown ?? resources[0] ?? ''}' (or it may not exist).`,
          );
        }
        return claims;
      },
    };
    const result = await found.handle(call);
    if (result instanceof Reply) sendJson(res, result.status, result.body);
    else sendJson(res, 200, result ?? {});
  } catch (err) {
    if (err instanceof GoogleApiError) sendError(res, err);
    else sendError(res, new GoogleApiError('INTERNAL', err instanceof Error ? err.message : String(err)));
  }
}

/** The policy object as the IAM v1 JSON mapping writes it (no `bindings` when empty). */
export function policyJson(policy: { version: number; bindings: unknown[]; etag: string }): Record<string, unknown> {
  return {
    version: policy.version,
    ...(policy.bindings.length > 0 ? { bindings: policy.bindings } : {}),
    etag: policy.etag,
  };
}
