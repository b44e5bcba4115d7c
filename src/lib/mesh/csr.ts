// A workload key and its PKCS#10 certificate signing request, built with node:crypto and a few DER encoders (no
// ASN.1 library in the runtime bundle). The CSR names the SPIFFE id in its subjectAltName and asks for a leaf's
// usages (the original sent no SAN, and only RSA keys).
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

export type WorkloadKeyType = 'ec' | 'rsa';
export const WORKLOAD_KEY_TYPES: readonly WorkloadKeyType[] = ['ec', 'rsa'];

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const octets = (b: Buffer) => tlv(0x04, b);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const TRUE = Buffer.from([0x01, 0x01, 0xff]);

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [TRUE] : []), octets(value));
}

/** The extensions a workload leaf asks for: the SPIFFE URI SAN, digitalSignature + keyEncipherment, TLS server
 * and client, not a CA. */
function requestedExtensions(spiffeId: string): Buffer {
  return seq(
    extension('2.5.29.17', false, seq(tlv(0x86, Buffer.from(spiffeId, 'ascii')))),
    // BIT STRING, 5 unused bits: digitalSignature (bit 0) and keyEncipherment (bit 2).
    extension('2.5.29.15', true, Buffer.from([0x03, 0x02, 0x05, 0xa0])),
    extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))),
    extension('2.5.29.19', true, seq()),
  );
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface WorkloadKey {
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  readonly csrPem: string;
}

/** A new key (EC P-256, or RSA 2048) and a CSR for `spiffeId`, subject O=<trust domain> as the original's. */
export function workloadKeyAndCsr(type: WorkloadKeyType, trustDomain: string, spiffeId: string): WorkloadKey {
  const { privateKey, publicKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, csrPem: csr(privateKey, publicKey) };

  function csr(key: KeyObject, pub: KeyObject): string {
    const subject = seq(set(seq(oid('2.5.4.10'), utf8(trustDomain))));
    const extensionRequest = seq(oid('1.2.840.113549.1.9.14'), set(requestedExtensions(spiffeId)));
    const info = seq(
      tlv(0x02, Buffer.from([0])),
      subject,
      pub.export({ type: 'spki', format: 'der' }),
      tlv(0xa0, extensionRequest),
    );
    const algorithm =
      type === 'rsa' ? seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) : seq(oid('1.2.840.10045.4.3.2'));
    // A leading 0 byte: no unused bits in the signature's BIT STRING.
    const signature = tlv(0x03, Buffer.from([0]), sign('sha256', info, key));
    return toPem('CERTIFICATE REQUEST', seq(info, algorithm, signature));
  }
}
