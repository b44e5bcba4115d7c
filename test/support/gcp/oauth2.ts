// Google's OAuth 2.0 token endpoint (oauth2.googleapis.com/token) for service account key files: the JWT-bearer grant
// (RFC 7523) that google-auth-library's JWT client sends, signed with the key file's private key; refresh tokens
// (authorized_user files) are all refused as expired. The assertion is
// verified against the public keys IAM kept when it created the account's keys; the answer is an emulator access
// token for the account (or, for a `target_audience` assertion, an ID token), errors in OAuth's shape.
import { verify } from 'node:crypto';
import { Reply, type Route, route } from './http.ts';
import { type GcpState, GOOGLE_TOKEN_URL, type ServiceAccountKey } from './state.ts';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Google accepts assertions for at most an hour, with a little clock skew. */
const MAX_LIFETIME_SECONDS = 3600;
const SKEW_SECONDS = 300;

class OAuthError extends Error {
  readonly error: string;
  constructor(error: string, description: string) {
    super(description);
    this.error = error;
  }
}

const invalidGrant = (description: string) => new OAuthError('invalid_grant', description);

interface Assertion {
  readonly iss?: unknown;
  readonly aud?: unknown;
  readonly exp?: unknown;
  readonly iat?: unknown;
  readonly scope?: unknown;
  readonly target_audience?: unknown;
}

function decode(part: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {}
  throw invalidGrant('Invalid JWT: malformed.');
}

/** The verified claims of an assertion, and the service account it is for. */
function verifyAssertion(state: GcpState, assertion: string, now: number): { email: string; claims: Assertion } {
  const parts = assertion.split('.');
  if (parts.length !== 3) throw invalidGrant('Invalid JWT: malformed.');
  const [h = '', p = '', s = ''] = parts;
  const header = decode(h) as { alg?: unknown; kid?: unknown };
  const claims = decode(p) as Assertion;
  if (header.alg !== 'RS256') throw invalidGrant('Invalid JWT Signature.');
  const sa = typeof claims.iss === 'string' ? state.serviceAccount(claims.iss) : undefined;
  if (!sa || sa.disabled) throw invalidGrant('Invalid grant: account not found');
  // google-auth-library sends no `kid`: any of the account's keys may have signed it.
  const keys: ServiceAccountKey[] =
    typeof header.kid === 'string'
      ? state.keysOf(sa.email).filter((k) => k.keyId === header.kid)
      : state.keysOf(sa.email);
  const input = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s, 'base64url');
  if (!keys.some((k) => verify('sha256', input, k.publicKey, signature))) throw invalidGrant('Invalid JWT Signature.');
  const audiences = [state.tokenUri, GOOGLE_TOKEN_URL];
  if (typeof claims.aud !== 'string' || !audiences.includes(claims.aud)) {
    throw invalidGrant('Invalid JWT: Failed audience check.');
  }
  const seconds = now / 1000;
  if (
    typeof claims.exp !== 'number' ||
    typeof claims.iat !== 'number' ||
    claims.exp <= seconds ||
    claims.iat > seconds + SKEW_SECONDS ||
    claims.exp - claims.iat > MAX_LIFETIME_SECONDS
  ) {
    throw invalidGrant(
      'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat ' +
        'and exp values in the JWT claim.',
    );
  }
  return { email: sa.email, claims };
}

/** `POST /token`: the JWT-bearer grant (form-encoded or JSON `grant_type` and `assertion`). */
export function tokenRoute(state: GcpState): Route {
  return route('POST', /^\/token$/, (call) => {
    try {
      const grantType = call.body.grant_type;
      // User credentials (gcloud's ADC file): the emulator issued no refresh tokens, so each is expired or revoked.
      if (grantType === 'refresh_token') throw invalidGrant('Token has been expired or revoked.');
      if (grantType !== JWT_BEARER) {
        throw new OAuthError('unsupported_grant_type', `Invalid grant_type: ${String(grantType ?? '')}`);
      }
      const assertion = call.body.assertion;
      if (typeof assertion !== 'string' || !assertion) throw new OAuthError('invalid_request', 'Missing assertion.');
      const { email, claims } = verifyAssertion(state, assertion, Date.now());
      if (typeof claims.target_audience === 'string' && claims.target_audience) {
        return { id_token: state.idToken(email, claims.target_audience) };
      }
      const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
      if (scopes.length === 0) {
        throw new OAuthError('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
      }
      const { token, expiresIn } = state.accessToken(email, { scopes });
      return { access_token: token, expires_in: expiresIn, token_type: 'Bearer' };
    } catch (err) {
      if (err instanceof OAuthError) return new Reply(400, { error: err.error, error_description: err.message });
      throw err;
    }
  });
}
