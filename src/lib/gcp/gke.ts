// The GKE and Fleet (GKE Hub) REST calls krun needs, through google-auth-library's authorised client (the same
// credentials as gcloud: metadata server, GOOGLE_APPLICATION_CREDENTIALS, or a developer's ADC).
import type { GoogleAuth } from 'google-auth-library';
import { KrunError, NotFoundError, PermissionError } from '../errors.ts';
import { apiBase } from './endpoints.ts';

export interface GkeCluster {
  readonly project: string;
  readonly name: string;
  readonly location: string;
  /** host or host:port of the control plane. */
  readonly endpoint: string;
  /** PEM of the cluster CA. */
  readonly caCertificate: string;
  readonly resourceLabels: Readonly<Record<string, string>>;
}

interface RawCluster {
  name?: string;
  location?: string;
  endpoint?: string;
  masterAuth?: { clusterCaCertificate?: string };
  resourceLabels?: Record<string, string>;
}

type Env = Readonly<Record<string, string | undefined>>;

interface GaxiosLike {
  response?: { status?: number; data?: { error?: { message?: string; status?: string } } };
  message: string;
}

function toCluster(project: string, raw: RawCluster): GkeCluster {
  return {
    project,
    name: raw.name ?? '',
    location: raw.location ?? '',
    endpoint: raw.endpoint ?? '',
    caCertificate: Buffer.from(raw.masterAuth?.clusterCaCertificate ?? '', 'base64').toString('utf8'),
    resourceLabels: raw.resourceLabels ?? {},
  };
}

async function call<T>(auth: GoogleAuth, url: string, what: string, project: string, role: string): Promise<T> {
  try {
    const res = await auth.request<T>({ url, method: 'GET', timeout: 15_000, retry: false });
    return res.data;
  } catch (err) {
    const e = err as GaxiosLike;
    const status = e.response?.status;
    const detail = e.response?.data?.error?.message ?? e.message;
    if (status === 403) {
      const who = await auth.getCredentials().then(
        (c) => c.client_email,
        () => undefined,
      );
      throw new PermissionError(
        `forbidden: ${who ?? "krun's Google identity"} may not ${what} in project ${project}: ${detail}`,
        {
          hints: [
            `gcloud projects add-iam-policy-binding ${project} --member serviceAccount:${who ?? 'SERVICE_ACCOUNT'} --role ${role}`,
          ],
        },
      );
    }
    if (status === 404) throw new NotFoundError(`${what} in project ${project}: not found (${detail})`);
    if (status === 401) {
      throw new KrunError(`Google rejected krun's credentials to ${what}: ${detail}`, {
        hints: ['check GOOGLE_APPLICATION_CREDENTIALS, or the service account the instance runs as'],
      });
    }
    throw new KrunError(`can't ${what} in project ${project}: ${detail}`, { cause: err });
  }
}

export async function listClusters(auth: GoogleAuth, project: string, env: Env): Promise<GkeCluster[]> {
  const url = `${apiBase('container', env)}v1/projects/${project}/locations/-/clusters`;
  const data = await call<{ clusters?: RawCluster[] }>(
    auth,
    url,
    'list GKE clusters',
    project,
    'roles/container.clusterViewer',
  );
  return (data.clusters ?? []).map((c) => toCluster(project, c));
}

export async function getCluster(auth: GoogleAuth, project: string, location: string, name: string, env: Env) {
  // The original asked for `…/cluster/N` (singular) here; the API's path is `clusters`.
  const url = `${apiBase('container', env)}v1/projects/${project}/locations/${location}/clusters/${name}`;
  return toCluster(
    project,
    await call<RawCluster>(auth, url, `get GKE cluster ${location}/${name}`, project, 'roles/container.clusterViewer'),
  );
}

export interface Membership {
  /** projects/P/locations/L/memberships/M */
  readonly name: string;
  /** The GKE cluster behind it, as projects/P/locations/L/clusters/N, if it is one. */
  readonly gkeCluster?: string | undefined;
}

export async function listMemberships(auth: GoogleAuth, project: string, env: Env): Promise<Membership[]> {
  const url = `${apiBase('gkehub', env)}v1/projects/${project}/locations/-/memberships`;
  const data = await call<{ resources?: { name?: string; endpoint?: { gkeCluster?: { resourceLink?: string } } }[] }>(
    auth,
    url,
    'list Fleet memberships',
    project,
    'roles/gkehub.viewer',
  );
  return (data.resources ?? []).map((m) => ({
    name: m.name ?? '',
    gkeCluster: m.endpoint?.gkeCluster?.resourceLink?.replace(/^\/\/container\.googleapis\.com\//, ''),
  }));
}

/** The Connect Gateway URL that reaches a Fleet member's API server through Google (private or non-GKE clusters). */
export function connectGatewayServer(projectNumber: string, membership: string, env: Env): string {
  const m = /locations\/([^/]+)\/memberships\/([^/]+)$/.exec(membership);
  const base = env.CLOUDSDK_API_ENDPOINT_OVERRIDES_CONNECTGATEWAY || 'https://connectgateway.googleapis.com/';
  return `${base.endsWith('/') ? base : `${base}/`}v1/projects/${projectNumber}/locations/${m?.[1] ?? 'global'}/gkeMemberships/${m?.[2] ?? ''}`;
}
