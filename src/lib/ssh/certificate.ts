// OpenSSH certificates (PROTOCOL.certkeys): parsing the blob a client offers, and the checks sshd makes before a
// `cert-authority` line lets one in: user type, a trusted CA's valid signature, the validity window and principals.
import { KeyError, type PublicKey, readKeyFields, verifySshSignature } from './keys.ts';
import { WireError, WireReader, wireString } from './wire.ts';

export interface Certificate {
  readonly type: string;
  /** The certified key, as a plain public key. */
  readonly key: PublicKey;
  readonly serial: bigint;
  /** 1 = user, 2 = host. */
  readonly certType: number;
  readonly keyId: string;
  readonly principals: readonly string[];
  /** Seconds since the epoch; validBefore 2^64-1 means forever. */
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  readonly criticalOptions: readonly string[];
  readonly extensions: readonly string[];
  readonly signatureKey: Buffer;
  readonly signature: Buffer;
  /** Everything the CA signed. */
  readonly signed: Buffer;
}

const SUFFIX = '-cert-v01@openssh.com';

export function isCertificateType(type: string): boolean {
  return type.endsWith(SUFFIX);
}

function names(buf: Buffer): string[] {
  // Critical options and extensions are (name, data) pairs.
  const r = new WireReader(buf);
  const out: string[] = [];
  while (!r.done) {
    out.push(r.text());
    r.bytes();
  }
  return out;
}

export function parseCertificate(blob: Buffer): Certificate {
  try {
    const r = new WireReader(blob);
    const type = r.text();
    if (!isCertificateType(type)) throw new KeyError(`${type} is not a certificate type`);
    const base = type.slice(0, -SUFFIX.length).replace(/^rsa-sha2-(256|512)$/, 'ssh-rsa');
    r.bytes(); // nonce
    const start = r.offset;
    const keyObject = readKeyFields(base, r);
    const keyBlob = Buffer.concat([wireString(base), blob.subarray(start, r.offset)]);
    const serial = r.u64();
    const certType = r.u32();
    const keyId = r.text();
    const principals = r.strings();
    const validAfter = r.u64();
    const validBefore = r.u64();
    const criticalOptions = names(r.bytes());
    const extensions = names(r.bytes());
    r.bytes(); // reserved
    const signatureKey = r.bytes();
    const signedEnd = r.offset;
    const signature = r.bytes();
    if (!r.done) throw new KeyError('trailing data after the certificate');
    return {
      type,
      key: { type: base, blob: keyBlob, key: keyObject },
      serial,
      certType,
      keyId,
      principals,
      validAfter,
      validBefore,
      criticalOptions,
      extensions,
      signatureKey,
      signature,
      signed: blob.subarray(0, signedEnd),
    };
  } catch (err) {
    if (err instanceof KeyError) throw err;
    if (err instanceof WireError) throw new KeyError(`malformed certificate: ${err.message}`);
    throw new KeyError(`unusable certificate: ${(err as Error).message}`);
  }
}

/**
 * Why a certificate can't log in as `user` under this CA, or undefined when it can. `allowed` narrows the
 * principals (the line's `principals="…"`); otherwise the login name must be among the certificate's principals.
 */
export function certificateProblem(
  cert: Certificate,
  ca: PublicKey,
  user: string,
  allowed: readonly string[] | undefined,
  nowSeconds: number,
): string | undefined {
  if (cert.certType !== 1) return 'not a user certificate';
  if (!verifySshSignature(ca, cert.signed, cert.signature)) return 'bad CA signature';
  const now = BigInt(Math.floor(nowSeconds));
  if (now < cert.validAfter) return 'certificate not yet valid';
  if (now >= cert.validBefore) return 'certificate expired';
  if (cert.criticalOptions.length > 0) return `unsupported critical options: ${cert.criticalOptions.join(', ')}`;
  if (cert.principals.length === 0) return 'certificate has no principals';
  const wanted = allowed ?? [user];
  if (!cert.principals.some((p) => wanted.includes(p))) return `no principal matches ${wanted.join(',')}`;
  return undefined;
}
