// In-process authentication for servers not behind Cloud Run IAM: a bearer JWT from a trusted issuer for this
// service's audience, from an allowed principal. Google ID tokens name the principal by `email`; Kubernetes tokens
// by `sub` (system:serviceaccount:<ns>:<name>).
import type { IncomingHttpHeaders } from 'node:http';
import { decodePart, type JwtClaims, JwtError, type JwtVerifier } from './jwt.ts';

export type AuthResult =
  | { readonly ok: true; readonly principal: string; readonly claims: JwtClaims }
  | { readonly ok: false; readonly status: 401 | 403; readonly reason: string };

export interface Authenticator {
  authenticate(headers: IncomingHttpHeaders): Promise<AuthResult>;
}

export interface JwtAuthenticatorOptions {
  readonly verifier: JwtVerifier;
  /**
   * Who may connect: emails or subjects, optionally in IAM member form (`serviceAccount:a@b`, `user:a@b`).
   * Empty or absent: any holder of a valid token.
   */
  readonly principals?: readonly string[];
}

export function bearerToken(headers: IncomingHttpHeaders, name = 'authorization'): string | undefined {
  const value = headers[name];
  const header = Array.isArray(value) ? value[0] : value;
  return header ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
}

export function principalOf(claims: JwtClaims): string {
  if (typeof claims.email === 'string' && claims.email_verified !== false) return claims.email;
  return typeof claims.sub === 'string' ? claims.sub : '';
}

/**
 * The principal Cloud Run's front end admitted. It verified the ID token (IAM invoker check) and forwards it with
 * the signature cut, so only the claims are left to read. Trusted only where the front end is the sole way in
 * (K_SERVICE set, no in-process authentication); anywhere else these claims could be forged.
 */
export function frontEndPrincipal(headers: IncomingHttpHeaders): string | undefined {
  for (const name of ['x-serverless-authorization', 'authorization']) {
    const payload = bearerToken(headers, name)?.split('.')[1];
    if (!payload) continue;
    try {
      const principal = principalOf(decodePart(payload, 'payload') as JwtClaims);
      if (principal) return principal;
    } catch {
      // not a JWT: nothing to say about the caller
    }
  }
  return undefined;
}

export function jwtAuthenticator(options: JwtAuthenticatorOptions): Authenticator {
  const allowed = new Set((options.principals ?? []).map((p) => p.replace(/^(serviceAccount|user|group):/, '')));
  return {
    async authenticate(headers) {
      const token = bearerToken(headers);
      if (!token) return { ok: false, status: 401, reason: 'no bearer token' };
      let claims: JwtClaims;
      try {
        claims = await options.verifier.verify(token);
      } catch (err) {
        if (err instanceof JwtError) return { ok: false, status: 401, reason: err.message };
        throw err;
      }
      const principal = principalOf(claims);
      const ids = [principal, typeof claims.sub === 'string' ? claims.sub : ''].filter((id) => id !== '');
      if (allowed.size > 0 && !ids.some((id) => allowed.has(id))) {
        return { ok: false, status: 403, reason: `${principal || 'the caller'} is not an allowed principal` };
      }
      return { ok: true, principal, claims };
    },
  };
}
