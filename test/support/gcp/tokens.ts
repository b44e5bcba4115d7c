// The emulator's identity: access tokens that any holder of the HMAC key can verify (the emulated APIs, and the
// kube-apiserver's token webhook, like GKE accepting Google tokens), and ID tokens that are real RS256 JWTs signed by
// a key whose certificates the emulator serves, so verification code runs for real.
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { createCertificateAuthority } from '../pki.ts';

/** Google's ID tokens name this issuer; google-auth-library accepts it by default. */
export const GOOGLE_ISSUER = 'https://accounts.google.com';

const ACCESS_TOKEN_PREFIX = 'ya29.';
const MAC_BYTES = 32;

export interface AccessTokenClaims {
  /** The IAM member the token acts as: `serviceAccount:x@p.iam.gserviceaccount.com`, `user:a@b.c`, ... */
  readonly member: string;
  /** The Google account email, when the principal has one (a federated workload identity has none). */
  readonly email?: string;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  readonly scopes?: readonly string[];
}

/** A new random key for {@link mintAccessToken}; share it (base64) with whatever else must accept the tokens. */
export function newAccessTokenKey(): string {
  return randomBytes(32).toString('base64');
}

function mac(key: string, payload: Buffer): Buffer {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(payload).digest();
}

/** `ya29.` + base64url(JSON claims ‖ HMAC-SHA256): opaque to clients, self-verifying for the key holder. */
export function mintAccessToken(key: string, claims: AccessTokenClaims): string {
  const payload = Buffer.from(JSON.stringify(claims), 'utf8');
  return ACCESS_TOKEN_PREFIX + Buffer.concat([payload, mac(key, payload)]).toString('base64url');
}

/** The claims of a token minted with `key` that has not expired, else undefined. */
export function verifyAccessToken(key: string, token: string, now = Date.now()): AccessTokenClaims | undefined {
  if (!token.startsWith(ACCESS_TOKEN_PREFIX)) return undefined;
  const raw = Buffer.from(token.slice(ACCESS_TOKEN_PREFIX.length), 'base64url');
  if (raw.length <= MAC_BYTES) return undefined;
  const payload = raw.subarray(0, raw.length - MAC_BYTES);
  const expected = mac(key, payload);
  if (!timingSafeEqual(expected, raw.subarray(raw.length - MAC_BYTES))) return undefined;
  let claims: AccessTokenClaims;
  try {
    claims = JSON.parse(payload.toString('utf8')) as AccessTokenClaims;
  } catch {
    return undefined;
  }
  if (typeof claims.member !== 'string' || typeof claims.exp !== 'number') return undefined;
  return claims.exp * 1000 > now ? claims : undefined;
}

export interface IdTokenClaims {
  readonly iss: string;
  readonly aud: string;
  readonly sub: string;
  readonly azp?: string;
  readonly email?: string;
  readonly email_verified?: boolean;
  readonly iat: number;
  readonly exp: number;
  readonly [claim: string]: unknown;
}

export class IdTokenError extends Error {}

/** Signs and verifies ID tokens; publishes its key as Google does (PEM certificates by kid, and a JWKS). */
export class TokenIssuer {
  readonly iss: string;
  readonly kid: string;
  readonly certPem: string;
  readonly #key: KeyObject;
  readonly #publicKey: KeyObject;

  private constructor(iss: string, kid: string, certPem: string, keyPem: string) {
    this.iss = iss;
    this.kid = kid;
    this.certPem = certPem;
    this.#key = createPrivateKey(keyPem);
    this.#publicKey = createPublicKey(certPem);
  }

  static async create(iss = GOOGLE_ISSUER): Promise<TokenIssuer> {
    // A self-signed RSA certificate, as Google publishes at oauth2/v1/certs.
    const signer = await createCertificateAuthority('krun test token issuer', { key: 'rsa', days: 1 });
    return new TokenIssuer(iss, randomBytes(20).toString('hex'), signer.certPem, signer.keyPem);
  }

  /** `{kid: PEM certificate}`, the shape of https://www.googleapis.com/oauth2/v1/certs. */
  pemCerts(): Record<string, string> {
    return { [this.kid]: this.certPem };
  }

  /** The shape of https://www.googleapis.com/oauth2/v3/certs. */
  jwks(): { keys: Record<string, unknown>[] } {
    const jwk = this.#publicKey.export({ format: 'jwk' });
    return { keys: [{ ...jwk, kid: this.kid, alg: 'RS256', use: 'sig' }] };
  }

  sign(claims: Record<string, unknown>): string {
    const header = { alg: 'RS256', kid: this.kid, typ: 'JWT' };
    const input = `${b64json(header)}.${b64json(claims)}`;
    const signature = sign('sha256', Buffer.from(input), this.#key).toString('base64url');
    return `${input}.${signature}`;
  }

  /** An ID token as Google issues for a service account (`sub`/`azp` = its unique id) or a user. */
  idToken({
    audience,
    subject,
    email,
    lifetimeSeconds = 3600,
    extra = {},
  }: {
    audience: string;
    subject: string;
    email?: string;
    lifetimeSeconds?: number;
    extra?: Record<string, unknown>;
  }): string {
    const iat = Math.floor(Date.now() / 1000);
    return this.sign({
      iss: this.iss,
      aud: audience,
      azp: subject,
      sub: subject,
      ...(email ? { email, email_verified: true } : {}),
      iat,
      exp: iat + lifetimeSeconds,
      ...extra,
    });
  }

  /** Verifies signature, issuer, expiry and (when given) audience; throws IdTokenError saying why not. */
  verify(token: string, audiences?: readonly string[], now = Date.now()): IdTokenClaims {
    const parts = token.split('.');
    if (parts.length !== 3) throw new IdTokenError('not a JWT');
    const [h = '', p = '', s = ''] = parts;
    let header: { alg?: string; kid?: string };
    let claims: IdTokenClaims;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as IdTokenClaims;
    } catch {
      throw new IdTokenError('malformed JWT');
    }
    if (header.alg !== 'RS256' || header.kid !== this.kid) throw new IdTokenError('unknown signing key');
    if (!verify('sha256', Buffer.from(`${h}.${p}`), this.#publicKey, Buffer.from(s, 'base64url'))) {
      throw new IdTokenError('invalid signature');
    }
    if (claims.iss !== this.iss) throw new IdTokenError(`wrong issuer ${claims.iss}`);
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) throw new IdTokenError('expired');
    if (audiences && !audiences.includes(claims.aud)) throw new IdTokenError(`wrong audience ${claims.aud}`);
    return claims;
  }
}

function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}
