// Bearer JWT verification for the tunnel server's optional in-process authentication: a Google ID token or a
// Kubernetes service-account token, checked against one issuer's JWKS (fetched and cached, refetched when a token
// names a key it does not know), the expected audiences, and the token's lifetime.
import { createPublicKey, type JsonWebKey, type KeyObject, verify } from 'node:crypto';

export interface Jwks {
  readonly keys: readonly (JsonWebKey & { kid?: string; alg?: string; use?: string })[];
}

export interface JwtClaims {
  readonly iss?: string;
  readonly sub?: string;
  readonly aud?: string | readonly string[];
  readonly exp?: number;
  readonly nbf?: number;
  readonly iat?: number;
  readonly email?: string;
  readonly email_verified?: boolean;
  readonly [claim: string]: unknown;
}

export interface JwtVerifierOptions {
  /** Accepted `iss` values. */
  readonly issuers: readonly string[];
  /** Accepted `aud` values; a token must name at least one. */
  readonly audiences: readonly string[];
  /** Where the issuer publishes its keys (e.g. https://www.googleapis.com/oauth2/v3/certs). */
  readonly jwksUri?: string;
  /** Keys given directly instead of (or before fetching) `jwksUri`. */
  readonly jwks?: Jwks;
  readonly fetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  readonly clockSkewSeconds?: number;
  /** How long fetched keys are used before refetching; default 1 hour. */
  readonly cacheSeconds?: number;
}

export class JwtError extends Error {}

export interface JwtVerifier {
  verify(token: string): Promise<JwtClaims>;
}

const ALGORITHMS: Readonly<Record<string, { hash: string; kty: string; ieee?: true }>> = {
  RS256: { hash: 'sha256', kty: 'RSA' },
  RS384: { hash: 'sha384', kty: 'RSA' },
  RS512: { hash: 'sha512', kty: 'RSA' },
  ES256: { hash: 'sha256', kty: 'EC', ieee: true },
  ES384: { hash: 'sha384', kty: 'EC', ieee: true },
};

/** Refetching the JWKS for an unknown key id happens at most this often. */
const REFETCH_INTERVAL_MS = 30_000;

export function decodePart(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new JwtError(`malformed JWT ${what}`);
}

export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  if (!options.jwksUri && !options.jwks) throw new JwtError('a JWT verifier needs jwksUri or jwks');
  const now = options.now ?? Date.now;
  const skew = (options.clockSkewSeconds ?? 60) * 1000;
  const fetchImpl = options.fetch ?? fetch;
  let keys = new Map<string, { key: KeyObject; kty: string }>();
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let inflight: Promise<void> | undefined;

  const load = (jwks: Jwks): void => {
    const next = new Map<string, { key: KeyObject; kty: string }>();
    jwks.keys.forEach((jwk, i) => {
      if (jwk.use !== undefined && jwk.use !== 'sig') return;
      try {
        next.set(jwk.kid ?? `#${i}`, { key: createPublicKey({ key: jwk, format: 'jwk' }), kty: String(jwk.kty) });
      } catch {
        // A key this runtime cannot import is skipped, like any key of an unknown type.
      }
    });
    keys = next;
  };
  if (options.jwks) load(options.jwks);

  const refresh = (): Promise<void> => {
    if (!options.jwksUri) return Promise.resolve();
    inflight ??= (async () => {
      try {
        const res = await fetchImpl(options.jwksUri as string, { headers: { accept: 'application/json' } });
        if (!res.ok) throw new JwtError(`fetching the issuer's keys from ${options.jwksUri}: HTTP ${res.status}`);
        load((await res.json()) as Jwks);
        fetchedAt = now();
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  };

  const keyFor = async (kid: string | undefined): Promise<{ key: KeyObject; kty: string } | undefined> => {
    const age = now() - fetchedAt;
    if (options.jwksUri && (keys.size === 0 || age > (options.cacheSeconds ?? 3600) * 1000)) await refresh();
    const find = () => (kid === undefined ? (keys.size === 1 ? [...keys.values()][0] : undefined) : keys.get(kid));
    let found = find();
    if (!found && options.jwksUri && now() - fetchedAt > REFETCH_INTERVAL_MS) {
      await refresh();
      found = find();
    }
    return found;
  };

  return {
    async verify(token) {
      const parts = token.split('.');
      if (parts.length !== 3) throw new JwtError('not a JWT');
      const [h = '', p = '', s = ''] = parts;
      const header = decodePart(h, 'header');
      const claims = decodePart(p, 'payload') as JwtClaims;
      const alg = typeof header.alg === 'string' ? ALGORITHMS[header.alg] : undefined;
      if (!alg) throw new JwtError(`unsupported JWT algorithm ${String(header.alg)}`);
      const found = await keyFor(typeof header.kid === 'string' ? header.kid : undefined);
      if (!found || found.kty !== alg.kty)
        throw new JwtError('the token is signed by a key the issuer does not publish');
      const valid = verify(
        alg.hash,
        Buffer.from(`${h}.${p}`),
        alg.ieee ? { key: found.key, dsaEncoding: 'ieee-p1363' } : found.key,
        Buffer.from(s, 'base64url'),
      );
      if (!valid) throw new JwtError('invalid token signature');
      if (typeof claims.iss !== 'string' || !options.issuers.includes(claims.iss)) {
        throw new JwtError(`unexpected token issuer ${String(claims.iss)}`);
      }
      const t = now();
      if (typeof claims.exp !== 'number' || claims.exp * 1000 + skew <= t) throw new JwtError('the token has expired');
      if (typeof claims.nbf === 'number' && claims.nbf * 1000 - skew > t)
        throw new JwtError('the token is not valid yet');
      const auds = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
      if (!auds.some((a) => options.audiences.includes(a))) {
        throw new JwtError(`the token's audience ${auds.join(', ') || '(none)'} is not accepted here`);
      }
      return claims;
    },
  };
}
