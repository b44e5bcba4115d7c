// The Connect Gateway (connectgateway.googleapis.com): Kubernetes API requests for a Fleet member, sent to
// /v1/projects/<number>/locations/<l>/gkeMemberships/<m>/<k8s path> with a Google access token. The gateway checks
// the caller's gkehub.gateway.<verb> permission, and the member's Connect Agent replays the request at the cluster's
// apiserver impersonating the caller's Google email, so RBAC applies to that email, as on the real service.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'node:https';
import { bearer, GoogleApiError, notFound, sendError } from './http.ts';
import type { GcpState } from './state.ts';
import { verifyAccessToken } from './tokens.ts';

const PATH = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/gkeMemberships\/([^/]+)(\/.*)?$/;
const VERB: Readonly<Record<string, string>> = { HEAD: 'get', OPTIONS: 'get' };
/** Headers the gateway does not pass on: its own credentials, hop-by-hop ones, and caller-chosen impersonation. */
const DROPPED = /^(authorization|host|connection|keep-alive|transfer-encoding|upgrade|impersonate-.*)$/i;

export function connectGatewayHandler(state: GcpState, tokenKey: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    try {
      const url = new URL(req.url ?? '/', 'https://connectgateway.googleapis.com');
      const m = PATH.exec(url.pathname);
      if (!m) throw notFound('Not Found');
      const [, p = '', location = '', name = '', rest = '/'] = m;
      const project = state.project(p);
      const shown = `projects/${p}/locations/${location}/memberships/${name}`;
      const token = bearer(req);
      const claims = token ? verifyAccessToken(tokenKey, token) : undefined;
      if (!claims) throw new GoogleApiError('UNAUTHENTICATED', 'Request had invalid authentication credentials.');
      const method = req.method ?? 'GET';
      const permission = `gkehub.gateway.${VERB[method] ?? method.toLowerCase()}`;
      if (!project || !state.allows(claims.member, permission, [`projects/${project.projectId}`])) {
        throw new GoogleApiError('PERMISSION_DENIED', `Permission '${permission}' denied on resource '${shown}'.`);
      }
      const member = state.memberships.get(`projects/${project.projectId}/locations/${location}/memberships/${name}`);
      if (!member) throw notFound(`Resource '${shown}' was not found`);
      const kube = member.kube ?? (member.cluster ? state.clusters.get(member.cluster)?.kube : undefined);
      if (!kube) throw new GoogleApiError('UNAVAILABLE', `The Connect Agent of ${shown} is not connected.`);
      // Federated identities have no email; the gateway serves Google accounts only.
      if (!claims.email) throw new GoogleApiError('PERMISSION_DENIED', 'The caller has no Google account email.');
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROPPED.test(k)) headers[k] = v;
      headers.authorization = `Bearer ${kube.token}`;
      headers['impersonate-user'] = claims.email;
      const upstream = request(
        new URL(`${rest}${url.search}`, kube.server),
        { method, headers, ca: kube.ca },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', (err) => sendError(res, new GoogleApiError('UNAVAILABLE', err.message)));
      req.pipe(upstream);
    } catch (err) {
      if (err instanceof GoogleApiError) sendError(res, err);
      else sendError(res, new GoogleApiError('INTERNAL', String(err)));
    }
  };
}
