// Test PKI: certificate authorities and the certificates they issue, made in-process with WebCrypto (ECDSA P-256 by
// default, RSA where a peer insists on it). Used for the Google Cloud emulator's front end and token issuer, the
// kube-apiserver token webhook, and later for HBONE mTLS, where certificates carry SPIFFE URI SANs.
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The library, loaded after its reflect polyfill and with Node's WebCrypto: import it from here. */
export { x509 };

type CryptoKeyPair = webcrypto.CryptoKeyPair;

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-256',
} as const;

export type KeyKind = 'ec' | 'rsa';

export interface KeyAndCertificate {
  /** PEM, PKCS#8. */
  readonly keyPem: string;
  readonly certPem: string;
  /** The leaf followed by the issuing CA (empty for a self-signed certificate's issuer). */
  readonly chainPem: string;
}

export interface CertificateAuthority extends KeyAndCertificate {
  readonly name: string;
  issue(options: IssueOptions): Promise<KeyAndCertificate>;
  /** Signs someone else's public key (a CSR's) with exactly these extensions; the certificate's PEM. */
  sign(options: SignOptions): Promise<string>;
}

export interface SignOptions {
  readonly publicKey: webcrypto.CryptoKey;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly x509.Extension[];
}

export interface IssueOptions {
  readonly commonName: string;
  /** DNS names (wildcards allowed) and IP addresses; each goes into the subjectAltName of the right type. */
  readonly hosts?: readonly string[];
  /** URI SANs, e.g. `spiffe://cluster.local/ns/default/sa/app`. */
  readonly uris?: readonly string[];
  readonly days?: number;
  readonly key?: KeyKind;
  /** Both by default. */
  readonly usage?: 'server' | 'client' | 'both';
}

function algorithm(kind: KeyKind): webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams {
  return kind === 'rsa' ? { ...RSA } : { ...EC };
}

async function generateKeys(kind: KeyKind): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithm(kind), true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function privateKeyPem(keys: CryptoKeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const body = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd();
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  // Positive, 16 bytes.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  // A minute of back-dating absorbs clock skew between processes.
  return { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + days * 86_400_000) };
}

function pem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem')}\n`;
}

/** A new self-signed CA (ECDSA unless `key: 'rsa'`), valid for `days` (default 30). */
export async function createCertificateAuthority(
  name: string,
  { days = 30, key = 'ec' }: { days?: number; key?: KeyKind } = {},
): Promise<CertificateAuthority> {
  const keys = await generateKeys(key);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    ...validity(days),
    signingAlgorithm: algorithm(key),
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = pem(caCert);
  return {
    name,
    keyPem: await privateKeyPem(keys),
    certPem,
    chainPem: certPem,
    issue: (options) => issue(caCert, keys, key, options),
    sign: async (options) =>
      pem(
        await x509.X509CertificateGenerator.create({
          serialNumber: serial(),
          subject: options.subject,
          issuer: caCert.subject,
          notBefore: options.notBefore,
          notAfter: options.notAfter,
          signingAlgorithm: algorithm(key),
          publicKey: options.publicKey,
          signingKey: keys.privateKey,
          extensions: [...options.extensions, await x509.AuthorityKeyIdentifierExtension.create(caCert)],
        }),
      ),
  };
}

async function issue(
  caCert: x509.X509Certificate,
  caKeys: CryptoKeyPair,
  caKind: KeyKind,
  { commonName, hosts = [], uris = [], days = 30, key = 'ec', usage = 'both' }: IssueOptions,
): Promise<KeyAndCertificate> {
  const keys = await generateKeys(key);
  const names: x509.JsonGeneralName[] = [
    ...hosts.map((h): x509.JsonGeneralName => (isIP(h) ? { type: 'ip', value: h } : { type: 'dns', value: h })),
    ...uris.map((u): x509.JsonGeneralName => ({ type: 'url', value: u })),
  ];
  const extendedUsages = [
    ...(usage === 'client' ? [] : [x509.ExtendedKeyUsage.serverAuth]),
    ...(usage === 'server' ? [] : [x509.ExtendedKeyUsage.clientAuth]),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}`,
    issuer: caCert.subject,
    ...validity(days),
    signingAlgorithm: algorithm(caKind),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | (key === 'rsa' ? x509.KeyUsageFlags.keyEncipherment : 0),
        true,
      ),
      new x509.ExtendedKeyUsageExtension(extendedUsages),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
    ],
  });
  const certPem = pem(cert);
  return { keyPem: await privateKeyPem(keys), certPem, chainPem: certPem + pem(caCert) };
}

/** Writes a PEM bundle (e.g. for NODE_EXTRA_CA_CERTS or a kubeconfig) and returns its path. */
export function writePem(file: string, pemText: string): string {
  writeFileSync(file, pemText, { mode: 0o644 });
  return file;
}
