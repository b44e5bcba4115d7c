// The authentication decision, separate from ssh2 so it can be tested alone: which authorized_keys entry (or
// trusted CA) covers an offered key, and whether the proof of possession is valid. Comparisons of key material run
// in constant time over fixed-length digests, so neither content nor length leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuthorizedEntry } from './authorized-keys.ts';
import { certificateProblem, isCertificateType, parseCertificate } from './certificate.ts';
import {
  fingerprint,
  type KeyError,
  type PublicKey,
  parsePublicKey,
  verifyPreparsedSignature,
  verifySshSignature,
} from './keys.ts';

export interface Offer {
  readonly user: string;
  /** The algorithm named in the request (a key type, rsa-sha2-*, or a certificate type). */
  readonly algo: string;
  readonly keyBlob: Buffer;
  /** Absent when the client only asks whether the key would do. */
  readonly signature?: Buffer | undefined;
  /** What the signature covers (session id + request). */
  readonly signed?: Buffer | undefined;
  /** ssh2's hash for RSA signatures. */
  readonly hashAlgo?: string | undefined;
}

export interface Identity {
  /** The key's fingerprint (for certificates: the certified key's). */
  readonly fingerprint: string;
  /** The certificate's key id and principals, when a certificate was used. */
  readonly keyId?: string;
  readonly principals?: readonly string[];
  readonly source: string;
  readonly permitPty: boolean;
  readonly permitPortForwarding: boolean;
}

export type Decision =
  | { readonly ok: true; readonly identity: Identity }
  | {
      readonly ok: false;
      readonly reason: string;
      readonly fingerprint?: string;
      readonly keyId?: string;
      readonly principals?: readonly string[];
    };

function digest(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

/** Constant-time equality of two key blobs (compared as SHA-256 digests, so lengths don't leak). */
export function sameKey(a: Buffer, b: Buffer): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Scans every entry (no early exit) and returns the first match. */
function find(entries: readonly AuthorizedEntry[], kind: 'key' | 'ca', blob: Buffer): AuthorizedEntry | undefined {
  let found: AuthorizedEntry | undefined;
  for (const e of entries) {
    if (sameKey(e.key.blob, blob) && e.kind === kind && !found) found = e;
  }
  return found;
}

export function decide(entries: readonly AuthorizedEntry[], offer: Offer, nowSeconds: number): Decision {
  if (isCertificateType(offer.algo)) return decideCertificate(entries, offer, nowSeconds);
  let key: PublicKey;
  try {
    key = parsePublicKey(offer.keyBlob);
  } catch (err) {
    return { ok: false, reason: (err as KeyError).message };
  }
  const fp = fingerprint(key.blob);
  const entry = find(entries, 'key', key.blob);
  if (!entry) return { ok: false, reason: 'key not authorized', fingerprint: fp };
  if (offer.signature && offer.signed) {
    if (!verifyPreparsedSignature(key, offer.signed, offer.signature, offer.hashAlgo)) {
      return { ok: false, reason: 'bad signature', fingerprint: fp };
    }
  }
  return {
    ok: true,
    identity: {
      fingerprint: fp,
      source: entry.source,
      permitPty: entry.permitPty,
      permitPortForwarding: entry.permitPortForwarding,
    },
  };
}

function decideCertificate(entries: readonly AuthorizedEntry[], offer: Offer, nowSeconds: number): Decision {
  let cert: ReturnType<typeof parseCertificate>;
  try {
    cert = parseCertificate(offer.keyBlob);
  } catch (err) {
    return { ok: false, reason: (err as KeyError).message };
  }
  // What the certificate claims, for the audit trail of refusals too (it names who tried).
  const claimed = { fingerprint: fingerprint(cert.key.blob), keyId: cert.keyId, principals: cert.principals };
  const entry = find(entries, 'ca', cert.signatureKey);
  if (!entry) return { ok: false, reason: 'certificate signed by an untrusted CA', ...claimed };
  const problem = certificateProblem(cert, entry.key, offer.user, entry.principals, nowSeconds);
  if (problem) return { ok: false, reason: problem, ...claimed };
  // With a certificate, ssh2 passes the client's signature through untouched: the full SSH signature blob.
  if (offer.signature && offer.signed && !verifySshSignature(cert.key, offer.signed, offer.signature)) {
    return { ok: false, reason: 'bad signature', ...claimed };
  }
  return {
    ok: true,
    identity: {
      ...claimed,
      source: entry.source,
      permitPty: entry.permitPty && cert.extensions.includes('permit-pty'),
      permitPortForwarding: entry.permitPortForwarding && cert.extensions.includes('permit-port-forwarding'),
    },
  };
}
