// The managed-mesh token chain of the original (its pkg/sts): a Kubernetes ServiceAccount token whose audience is the
// trust domain is exchanged at Google's STS for a federated access token of the cluster's identity namespace, which
// may in turn impersonate the mesh data-plane service account through IAM Credentials. Plain REST: both endpoints
// follow gcloud's endpoint overrides.
import { KrunError, PermissionError } from '../errors.ts';
import { apiBase } from './endpoints.ts';

type Env = Readonly<Record<string, string | undefined>>;

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** IAM Credentials issues access tokens for at most an hour; the original asked for exactly that. */
const DATAPLANE_LIFETIME_SECONDS = 3600;
const TIMEOUT_MS = 10_000;

/** The cluster's resource URL, as GKE names it in identity namespaces (and pilot-agent's GKE_CLUSTER_URL). */
export function gkeClusterUrl(project: string, location: string, name: string): string {
  return `https://container.googleapis.com/v1/projects/${project}/locations/${location}/clusters/${name}`;
}

/** STS audience of a GKE workload identity exchange: `identitynamespace:<trust domain>:<cluster URL>`. */
export function identityNamespaceAudience(trustDomain: string, clusterUrl: string): string {
  return `identitynamespace:${trustDomain}:${clusterUrl}`;
}

/** The per-project mesh data-plane service agent (P4SA) the original impersonated. */
export function dataplaneServiceAccount(projectNumber: string): string {
  return `service-${projectNumber}@gcp-sa-meshdataplane.iam.gserviceaccount.com`;
}

export interface GoogleToken {
  readonly token: string;
  /** As issued (expires_in / expireTime), so clock skew with Google doesn't matter. */
  readonly lifetimeMs: number;
}

/** POSTs JSON (with a bearer token when given); the parsed JSON answer (`{}` when it is not JSON) and its text. */
export async function postJson(url: string, body: unknown, signal: AbortSignal | undefined, bearer?: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
    signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {}
  return { status: res.status, json, text };
}

/** Exchanges `subjectToken` (a Kubernetes JWT for the trust domain) at STS for a federated access token. */
export async function federatedToken(
  subjectToken: string,
  audience: string,
  env: Env,
  signal?: AbortSignal,
): Promise<GoogleToken> {
  const url = `${apiBase('sts', env)}v1/token`;
  let res: Awaited<ReturnType<typeof postJson>>;
  try {
    res = await postJson(
      url,
      {
        grantType: TOKEN_EXCHANGE_GRANT,
        subjectTokenType: JWT_TOKEN_TYPE,
        requestedTokenType: ACCESS_TOKEN_TYPE,
        audience,
        subjectToken,
        scope: CLOUD_PLATFORM_SCOPE,
      },
      signal,
    );
  } catch (err) {
    throw new KrunError(`can't reach Google STS at ${url}: ${(err as Error).message}`, { cause: err });
  }
  const token = res.json.access_token;
  if (res.status === 200 && typeof token === 'string') {
    return { token, lifetimeMs: Number(res.json.expires_in ?? 3600) * 1000 };
  }
  const error = `${String(res.json.error ?? res.status)}: ${String(res.json.error_description ?? res.text)}`;
  throw new KrunError(`Google STS refused the workload identity exchange (${error})`, {
    hints: [
      `the cluster of STS audience ${audience} must exist and have workload identity enabled`,
      'check PROJECT_ID, CLUSTER_LOCATION, CLUSTER_NAME and TRUST_DOMAIN (krun run --print-config)',
    ],
  });
}

/** An access token of `serviceAccount`, impersonated with the federated token (IAM Credentials). */
export async function impersonatedToken(
  federated: string,
  serviceAccount: string,
  federatedMember: string,
  env: Env,
  signal?: AbortSignal,
): Promise<GoogleToken> {
  const url = `${apiBase('iamcredentials', env)}v1/projects/-/serviceAccounts/${serviceAccount}:generateAccessToken`;
  let res: Awaited<ReturnType<typeof postJson>>;
  try {
    res = await postJson(
      url,
      { scope: [CLOUD_PLATFORM_SCOPE], lifetime: `${DATAPLANE_LIFETIME_SECONDS}s` },
      signal,
      federated,
    );
  } catch (err) {
    throw new KrunError(`can't reach IAM Credentials at ${url}: ${(err as Error).message}`, { cause: err });
  }
  const token = res.json.accessToken;
  if (res.status === 200 && typeof token === 'string') {
    return { token, lifetimeMs: DATAPLANE_LIFETIME_SECONDS * 1000 };
  }
  const detail = (res.json.error as { message?: string } | undefined)?.message ?? res.text;
  if (res.status === 403) {
    throw new PermissionError(`forbidden: ${federatedMember} may not impersonate ${serviceAccount}: ${detail}`, {
      hints: [
        `gcloud iam service-accounts add-iam-policy-binding ${serviceAccount} --role roles/iam.workloadIdentityUser --member '${federatedMember}'`,
        'or set KRUN_DATAPLANE_SERVICE_ACCOUNT to a service account the workload may impersonate',
      ],
    });
  }
  throw new KrunError(`IAM Credentials refused a token for ${serviceAccount} (${res.status}: ${detail})`);
}
