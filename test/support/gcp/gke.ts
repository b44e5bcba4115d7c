// GKE (container.googleapis.com/v1 clusters), Fleet (gkehub.googleapis.com/v1 memberships) and STS
// (sts.googleapis.com/v1/token, the GKE workload identity token exchange).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TestKube } from '../kube.ts';
import { type Call, notFound, type Route, readBody, route, sendJson } from './http.ts';
import type { Cluster, GcpState, Membership } from './state.ts';

const SEG = '([^/:]+)';

export const CONTAINER_HOST = 'container.googleapis.com';

/** `https://container.googleapis.com/v1/projects/P/locations/L/clusters/N`: the cluster's URL in STS audiences. */
export function clusterUrl(cluster: Cluster): string {
  return `https://${CONTAINER_HOST}/v1/projects/${cluster.projectId}/locations/${cluster.location}/clusters/${cluster.name}`;
}

/** The Connect Gateway URL that reaches a fleet member's apiserver. */
export function connectGatewayUrl(state: GcpState, membership: Membership): string {
  const number = state.project(membership.projectId)?.projectNumber ?? membership.projectId;
  return `https://connectgateway.googleapis.com/v1/projects/${number}/locations/${membership.location}/gkeMemberships/${membership.name}`;
}

function clusterJson(cluster: Cluster) {
  const zonal = /-[a-z]$/.test(cluster.location);
  return {
    name: cluster.name,
    masterAuth: { clusterCaCertificate: Buffer.from(cluster.caCertificatePem, 'utf8').toString('base64') },
    loggingService: 'logging.googleapis.com/kubernetes',
    monitoringService: 'monitoring.googleapis.com/kubernetes',
    network: 'default',
    clusterIpv4Cidr: '10.4.0.0/14',
    subnetwork: 'default',
    locations: [zonal ? cluster.location : `${cluster.location}-a`],
    labelFingerprint: 'a9dc16a7',
    ...(Object.keys(cluster.resourceLabels).length > 0 ? { resourceLabels: cluster.resourceLabels } : {}),
    selfLink: clusterUrl(cluster),
    zone: cluster.location,
    endpoint: cluster.endpoint,
    initialClusterVersion: cluster.currentMasterVersion,
    currentMasterVersion: cluster.currentMasterVersion,
    createTime: cluster.createTime,
    status: 'RUNNING',
    servicesIpv4Cidr: '34.118.224.0/20',
    location: cluster.location,
    id: cluster.id,
    workloadIdentityConfig: { workloadPool: `${cluster.projectId}.svc.id.goog` },
  };
}

function projectIdOf(state: GcpState, idOrNumber: string): string {
  return state.project(idOrNumber)?.projectId ?? idOrNumber;
}

function listClusters(state: GcpState, call: Call) {
  const [p = '', location = '-'] = call.params;
  const projectId = projectIdOf(state, p);
  call.authorize('container.clusters.list', [`projects/${projectId}`], `projects/${p}`);
  const clusters = [...state.clusters.values()].filter(
    (c) => c.projectId === projectId && (location === '-' || c.location === location),
  );
  return { clusters: clusters.map(clusterJson) };
}

function getCluster(state: GcpState, call: Call) {
  const [p = '', location = '', name = ''] = call.params;
  const projectId = projectIdOf(state, p);
  const shown = `projects/${p}/locations/${location}/clusters/${name}`;
  call.authorize('container.clusters.get', [`projects/${projectId}`], shown);
  const cluster = state.clusters.get(`projects/${projectId}/locations/${location}/clusters/${name}`);
  if (!cluster) throw notFound(`Not found: ${shown}.`);
  return clusterJson(cluster);
}

export function containerRoutes(state: GcpState): Route[] {
  return [
    route('GET', new RegExp(`^/v1/projects/${SEG}/(?:locations|zones)/${SEG}/clusters$`), (call) =>
      listClusters(state, call),
    ),
    route('GET', new RegExp(`^/v1/projects/${SEG}/(?:locations|zones)/${SEG}/clusters/${SEG}$`), (call) =>
      getCluster(state, call),
    ),
  ];
}

function membershipJson(state: GcpState, m: Membership) {
  const cluster = m.cluster ? state.clusters.get(m.cluster) : undefined;
  return {
    name: `projects/${m.projectId}/locations/${m.location}/memberships/${m.name}`,
    ...(Object.keys(m.labels).length > 0 ? { labels: m.labels } : {}),
    ...(m.cluster
      ? {
          endpoint: {
            gkeCluster: {
              resourceLink: `//${CONTAINER_HOST}/${m.cluster}`,
              ...(cluster ? {} : { clusterMissing: true }),
            },
          },
        }
      : {}),
    state: { code: 'READY' },
    createTime: m.createTime,
    updateTime: m.createTime,
    uniqueId: m.uniqueId,
    ...(cluster
      ? {
          authority: {
            issuer: clusterUrl(cluster),
            workloadIdentityPool: `${m.projectId}.svc.id.goog`,
            identityProvider: clusterUrl(cluster),
          },
        }
      : {}),
    monitoringConfig: m.cluster ? { cluster: m.cluster.split('/').pop() ?? '' } : {},
  };
}

export function gkeHubRoutes(state: GcpState): Route[] {
  return [
    route('GET', new RegExp(`^/v1/projects/${SEG}/locations/${SEG}/memberships$`), (call) => {
      const [p = '', location = '-'] = call.params;
      const projectId = projectIdOf(state, p);
      call.authorize('gkehub.memberships.list', [`projects/${projectId}`], `projects/${p}`);
      const found = [...state.memberships.values()].filter(
        (m) => m.projectId === projectId && (location === '-' || m.location === location),
      );
      return found.length > 0 ? { resources: found.map((m) => membershipJson(state, m)) } : {};
    }),
    route('GET', new RegExp(`^/v1/projects/${SEG}/locations/${SEG}/memberships/${SEG}$`), (call) => {
      const [p = '', location = '', name = ''] = call.params;
      const projectId = projectIdOf(state, p);
      const shown = `projects/${p}/locations/${location}/memberships/${name}`;
      call.authorize('gkehub.memberships.get', [`projects/${projectId}`], shown);
      const m = state.memberships.get(`projects/${projectId}/locations/${location}/memberships/${name}`);
      if (!m) throw notFound(`Resource '${shown}' was not found`);
      return membershipJson(state, m);
    }),
  ];
}

// --- STS

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];

class OAuthError extends Error {
  readonly error: string;
  readonly httpStatus: number;
  constructor(error: string, description: string, httpStatus = 400) {
    super(description);
    this.error = error;
    this.httpStatus = httpStatus;
  }
}

function field(body: Record<string, unknown>, camel: string): string | undefined {
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const value = body[camel] ?? body[snake];
  return typeof value === 'string' ? value : undefined;
}

async function exchange(state: GcpState, body: Record<string, unknown>) {
  if (field(body, 'grantType') !== TOKEN_EXCHANGE) {
    throw new OAuthError('unsupported_grant_type', `Unsupported grant_type: ${field(body, 'grantType') ?? ''}`);
  }
  const subjectTokenType = field(body, 'subjectTokenType') ?? '';
  if (!SUBJECT_TYPES.includes(subjectTokenType)) {
    throw new OAuthError('invalid_request', `Invalid subject_token_type: ${subjectTokenType}`);
  }
  const requested = field(body, 'requestedTokenType') ?? ACCESS_TOKEN_TYPE;
  if (requested !== ACCESS_TOKEN_TYPE) {
    throw new OAuthError('invalid_request', `Invalid requested_token_type: ${requested}`);
  }
  const subjectToken = field(body, 'subjectToken');
  if (!subjectToken) throw new OAuthError('invalid_request', 'subject_token is required');
  // identitynamespace:<project>.svc.id.goog:https://container.googleapis.com/v1/projects/P/locations/L/clusters/N
  const audience = field(body, 'audience') ?? '';
  const match = /^identitynamespace:([^:]+\.svc\.id\.goog):(https:\/\/.+)$/.exec(audience);
  const cluster = match ? [...state.clusters.values()].find((c) => clusterUrl(c) === match[2]) : undefined;
  const pool = match?.[1];
  if (!match || !cluster || !pool || pool !== `${cluster.projectId}.svc.id.goog`) {
    throw new OAuthError(
      'invalid_target',
      'The target service indicated by the "audience" parameters is invalid. This might either be because the ' +
        "pool or provider is disabled or deleted or because it doesn't exist.",
    );
  }
  if (!cluster.kube) throw new OAuthError('invalid_target', `Cluster ${cluster.name} has no identity provider.`);
  const review = await new TestKube(cluster.kube).reviewToken(subjectToken, [pool]);
  const ksa = review.authenticated ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(review.user?.username ?? '') : null;
  if (!ksa) {
    throw new OAuthError('invalid_grant', 'The audience in ID Token [] does not match the expected audience.');
  }
  const scopes = (field(body, 'scope') ?? 'https://www.googleapis.com/auth/cloud-platform').split(/\s+/);
  const { token, expiresIn } = state.accessToken(`serviceAccount:${pool}[${ksa[1]}/${ksa[2]}]`, { scopes });
  return { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: expiresIn };
}

/** `POST /v1/token` (JSON with camelCase fields, or an RFC 8693 form); errors are OAuth-style, not Google's. */
export function stsHandler(state: GcpState) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const text = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'POST' || (path !== '/v1/token' && path !== '/v1beta/token')) {
      sendJson(res, 404, { error: { code: 404, message: 'Not Found', status: 'NOT_FOUND' } });
      return;
    }
    try {
      let body: Record<string, unknown>;
      if (req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
        body = Object.fromEntries(new URLSearchParams(text));
      } else {
        try {
          body = JSON.parse(text || '{}') as Record<string, unknown>;
        } catch {
          throw new OAuthError('invalid_request', 'Invalid JSON payload');
        }
      }
      sendJson(res, 200, await exchange(state, body));
    } catch (err) {
      if (err instanceof OAuthError)
        sendJson(res, err.httpStatus, { error: err.error, error_description: err.message });
      else sendJson(res, 500, { error: 'server_error', error_description: String(err) });
    }
  };
}
