// ServiceAccount tokens where a Pod has them, from TokenRequest:
//   /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}   (API server audience)
//   /var/run/secrets/tokens/istio-token                                      (mesh audience)
//   /var/run/secrets/tokens/google-{federated,dataplane}-token               (KRUN_GOOGLE_TOKENS, Google access tokens)
// Both use kubelet's atomic projected-volume layout, so a reader never sees a half-written token.
import { join } from 'node:path';
import { NotFoundError, PermissionError } from '../errors.ts';
import type { Owner } from '../fs/atomic-file.ts';
import { type ProjectedFile, writeProjected } from '../fs/projected-dir.ts';
import { apiStatus, type KubeClient } from '../kube/client.ts';
import { DATAPLANE_TOKEN_FILE, exchangeTokens, FEDERATED_TOKEN_FILE, type GoogleChain } from './google-tokens.ts';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const ISTIO_TOKEN_DIR = '/var/run/secrets/tokens';
export const ISTIO_TOKEN_FILE = 'istio-token';
/** Like kubelet: a token is replaced once 80% of its lifetime has passed. */
export const REFRESH_AT = 0.8;

export interface IssuedToken {
  readonly token: string;
  /** Local time (the injected clock) when the token was received. */
  readonly receivedAt: number;
  /** Lifetime as the API server issued it (exp - iat), immune to clock skew between here and the server. */
  readonly lifetimeMs: number;
}

/** exp - iat of a JWT, or undefined when the token is not a JWT with both claims. */
export function jwtLifetimeMs(token: string): number | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      iat?: number;
      exp?: number;
    };
    return typeof claims.iat === 'number' && typeof claims.exp === 'number'
      ? (claims.exp - claims.iat) * 1000
      : undefined;
  } catch {
    return undefined;
  }
}

export interface TokenTarget {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly expirationSeconds: number;
}

interface TokenRequestStatus {
  status: { token: string; expirationTimestamp: string };
}

/** TokenRequest for `audiences` (empty = the API server's own audience). */
export async function requestToken(
  client: KubeClient,
  target: TokenTarget,
  audiences: readonly string[],
  now: number,
  signal?: AbortSignal,
): Promise<IssuedToken> {
  const { namespace, serviceAccount } = target;
  const path = `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`;
  try {
    const res = await client.post<TokenRequestStatus>(
      path,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences, expirationSeconds: target.expirationSeconds },
      },
      signal ? { signal } : {},
    );
    const token = res.status.token;
    return { token, receivedAt: now, lifetimeMs: jwtLifetimeMs(token) ?? target.expirationSeconds * 1000 };
  } catch (err) {
    const status = apiStatus(err);
    if (status === 404) {
      throw new NotFoundError(`ServiceAccount ${namespace}/${serviceAccount} does not exist`, {
        cause: err,
        hints: [
          `kubectl -n ${namespace} create serviceaccount ${serviceAccount}`,
          'or set WORKLOAD_SERVICE_ACCOUNT / WORKLOAD_NAMESPACE to an existing one',
        ],
      });
    }
    if (status === 403) {
      throw new PermissionError(
        `forbidden: krun may not create tokens for ServiceAccount ${namespace}/${serviceAccount} (${(err as Error).message})`,
        {
          cause: err,
          hints: [
            `grant "create" on "serviceaccounts/token" (resourceName ${serviceAccount}) in namespace ${namespace} to krun's identity`,
            `krun setup-namespace ${namespace} does this`,
          ],
        },
      );
    }
    throw err;
  }
}

export interface TokenFilesOptions {
  readonly baseDir: string;
  readonly target: TokenTarget;
  readonly istioAudience: string;
  /** The API server's CA, published as ca.crt like a Pod's. */
  readonly ca?: string | undefined;
  readonly owner?: Owner | undefined;
  /** A group that may read istio-token too (0640): the proxy's, which runs as UID/GID 1337 with capture. */
  readonly istioTokenGroup?: number | undefined;
  readonly now: number;
  readonly signal?: AbortSignal;
  /** The managed-mesh token chain, when configured: its tokens join istio-token. */
  readonly google?: GoogleChain | undefined;
}

/** Requests the tokens and writes them. Returns the earliest time one should be refreshed (80% of its life). */
export async function writeTokenFiles(client: KubeClient, options: TokenFilesOptions): Promise<number> {
  const { baseDir, target, now, owner, google } = options;
  const [api, mesh] = await Promise.all([
    requestToken(client, target, [], now, options.signal),
    requestToken(client, target, [options.istioAudience], now, options.signal),
  ]);
  const secret = (text: string): ProjectedFile => ({ data: Buffer.from(text), mode: 0o600 });
  const plain = (text: string): ProjectedFile => ({ data: Buffer.from(text), mode: 0o644 });
  const issued: IssuedToken[] = [api, mesh];
  const group = options.istioTokenGroup;
  const istioToken: ProjectedFile =
    group === undefined
      ? secret(mesh.token)
      : { data: Buffer.from(mesh.token), mode: 0o640, owner: { uid: owner?.uid ?? 0, gid: group } };
  const tokenFiles = new Map([[ISTIO_TOKEN_FILE, istioToken]]);
  if (google) {
    // STS accepts only a subject token for the trust domain; istio-token has that audience unless OSS Istio's.
    const subject =
      options.istioAudience === google.trustDomain
        ? mesh
        : await requestToken(client, target, [google.trustDomain], now, options.signal);
    const tokens = await exchangeTokens(subject.token, google, target, options.signal);
    tokenFiles.set(FEDERATED_TOKEN_FILE, secret(tokens.federated.token));
    issued.push(subject, { ...tokens.federated, receivedAt: now });
    if (tokens.dataplane) {
      tokenFiles.set(DATAPLANE_TOKEN_FILE, secret(tokens.dataplane.token));
      issued.push({ ...tokens.dataplane, receivedAt: now });
    }
  }
  const saFiles = new Map<string, ProjectedFile>([
    ['token', secret(api.token)],
    ['namespace', plain(target.namespace)],
  ]);
  if (options.ca) saFiles.set('ca.crt', plain(options.ca));
  await writeProjected(join(baseDir, SERVICE_ACCOUNT_DIR), saFiles, { owner });
  await writeProjected(join(baseDir, ISTIO_TOKEN_DIR), tokenFiles, { owner });
  return Math.min(...issued.map((t) => t.receivedAt + REFRESH_AT * t.lifetimeMs));
}
