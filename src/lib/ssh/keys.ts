// SSH public keys without ssh2: the wire blob to a node:crypto KeyObject, SHA256 fingerprints as OpenSSH prints
// them, and signature checks. Only key types OpenSSH 9 offers by default are accepted (Ed25519, ECDSA, RSA with
// SHA-2); DSA and SHA-1 RSA signatures are refused.
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { WireError, WireReader } from './wire.ts';

export interface PublicKey {
  /** ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, … */
  readonly type: string;
  /** The wire encoding, as in authorized_keys (base64) and in the auth request. */
  readonly blob: Buffer;
  readonly key: KeyObject;
}

export class KeyError extends Error {}

const CURVES: Record<string, { crv: string; hash: string; size: number }> = {
  'ecdsa-sha2-nistp256': { crv: 'P-256', hash: 'sha256', size: 32 },
  'ecdsa-sha2-nistp384': { crv: 'P-384', hash: 'sha384', size: 48 },
  'ecdsa-sha2-nistp521': { crv: 'P-521', hash: 'sha512', size: 66 },
};

export const KEY_TYPES: ReadonlySet<string> = new Set(['ssh-ed25519', 'ssh-rsa', ...Object.keys(CURVES)]);

const b64url = (b: Buffer) => b.toString('base64url');
const unsigned = (b: Buffer) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

/** Reads the type-specific fields of a key (after its type string) and returns the KeyObject. */
export function readKeyFields(type: string, r: WireReader): KeyObject {
  if (type === 'ssh-ed25519') {
    const x = r.bytes();
    if (x.length !== 32) throw new KeyError('bad Ed25519 key length');
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(x) }, format: 'jwk' });
  }
  if (type === 'ssh-rsa') {
    const e = unsigned(r.bytes());
    const n = unsigned(r.bytes());
    if (n.length * 8 < 2040) throw new KeyError('RSA keys shorter than 2048 bits are refused');
    return createPublicKey({ key: { kty: 'RSA', n: b64url(n), e: b64url(e) }, format: 'jwk' });
  }
  const curve = CURVES[type];
  if (curve) {
    r.text(); // the curve name, implied by the type
    const q = r.bytes();
    if (q.length !== 1 + 2 * curve.size || q[0] !== 4) throw new KeyError('bad ECDSA point');
    const x = q.subarray(1, 1 + curve.size);
    const y = q.subarray(1 + curve.size);
    return createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: b64url(x), y: b64url(y) }, format: 'jwk' });
  }
  throw new KeyError(`unsupported key type ${type}`);
}

/** Parses a public key in wire form; throws KeyError on anything malformed or unsupported. */
export function parsePublicKey(blob: Buffer): PublicKey {
  try {
    const r = new WireReader(blob);
    const type = r.text();
    const key = readKeyFields(type, r);
    if (!r.done) throw new KeyError('trailing data after the key');
    return { type, blob, key };
  } catch (err) {
    if (err instanceof KeyError) throw err;
    if (err instanceof WireError) throw new KeyError(`malformed key: ${err.message}`);
    throw new KeyError(`unusable key: ${(err as Error).message}`);
  }
}

/** OpenSSH's `SHA256:…` fingerprint of a public key blob. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** ECDSA signatures travel as two mpints; node wants r‖s of fixed width. */
function ecdsaP1363(body: Buffer, size: number): Buffer {
  const r = new WireReader(body);
  const parts = [unsigned(r.bytes()), unsigned(r.bytes())];
  const out = Buffer.alloc(size * 2);
  for (const [i, v] of parts.entries()) {
    if (v.length > size) throw new KeyError('bad ECDSA signature');
    v.copy(out, i * size + size - v.length);
  }
  return out;
}

/**
 * Checks an SSH signature blob (`string algorithm, string signature`) over `data` by `key`. The algorithm must fit
 * the key: the key's own type, or rsa-sha2-256/512 for RSA keys.
 */
export function verifySshSignature(key: PublicKey, data: Buffer, signature: Buffer): boolean {
  try {
    const r = new WireReader(signature);
    const algo = r.text();
    const body = r.bytes();
    if (key.type === 'ssh-ed25519') return algo === key.type && verify(null, data, key.key, body);
    if (key.type === 'ssh-rsa') {
      const hash = algo === 'rsa-sha2-256' ? 'sha256' : algo === 'rsa-sha2-512' ? 'sha512' : undefined;
      return hash !== undefined && verify(hash, data, key.key, body);
    }
    const curve = CURVES[key.type];
    if (!curve || algo !== key.type) return false;
    return verify(curve.hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, ecdsaP1363(body, curve.size));
  } catch {
    return false;
  }
}

/**
 * The same check for signatures as ssh2 hands them over: the outer algorithm stripped, ECDSA converted to DER, and
 * the RSA hash given separately (undefined meaning SHA-1, which is refused).
 */
export function verifyPreparsedSignature(
  key: PublicKey,
  data: Buffer,
  signature: Buffer,
  hashAlgo: string | undefined,
): boolean {
  try {
    if (key.type === 'ssh-ed25519') return verify(null, data, key.key, signature);
    if (key.type === 'ssh-rsa') {
      return (hashAlgo === 'sha256' || hashAlgo === 'sha512') && verify(hashAlgo, data, key.key, signature);
    }
    const curve = CURVES[key.type];
    return curve !== undefined && verify(curve.hash, data, { key: key.key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}
