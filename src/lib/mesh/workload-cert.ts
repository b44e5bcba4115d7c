// The workload certificate from a Certificate Authority Service pool (CA_POOL), in GKE's workload-certificate layout
// under the base directory, which pilot-agent reads with CA_PROVIDER=GoogleGkeWorkloadCertificate:
//   var/run/secrets/workload-spiffe-credentials/{certificates.pem, private_key.pem, ca_certificates.pem}
// The three files are swapped together (kubelet's atomic layout: a key never sits next to another key's
// certificate). A certificate on disk is reused only while less than 80% of its lifetime has passed (the original
// also took ones expired up to 5 minutes ago), and the refresh loop renews it at 80%.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../context.ts';
import { KrunError } from '../errors.ts';
import type { Owner } from '../fs/atomic-file.ts';
import { type ProjectedFile, writeProjected } from '../fs/projected-dir.ts';
import { createCertificate } from '../gcp/privateca.ts';
import type { Logger } from '../log/logger.ts';
import { type WorkloadKeyType, workloadKeyAndCsr } from './csr.ts';

export const WORKLOAD_CERT_DIR = 'var/run/secrets/workload-spiffe-credentials';
export const CERTIFICATES_FILE = 'certificates.pem';
export const PRIVATE_KEY_FILE = 'private_key.pem';
export const CA_CERTIFICATES_FILE = 'ca_certificates.pem';
/** Like the original: a day. */
export const WORKLOAD_CERT_LIFETIME_SECONDS = 24 * 3600;
/** Renewed, and no longer reused, once this share of the lifetime has passed. */
export const RENEW_AT = 0.8;

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export interface WorkloadCertOptions {
  readonly baseDir: string;
  readonly pool: string;
  readonly keyType: WorkloadKeyType;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The federated access token's file (KRUN_GOOGLE_TOKENS), kept fresh by the token loop. */
  readonly tokenFile: string;
  /** Owner of the files (K8S_UID when krun runs as root). */
  readonly owner?: Owner | undefined;
  /** The proxy user's group, which may read the key too (0640): pilot-agent runs as 1337 with capture. */
  readonly proxyGroup?: number | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly signal?: AbortSignal | undefined;
  /** Called after a renewal (not the first certificate): a proxyless pilot-agent must be restarted to load it. */
  readonly onRenewed?: (() => Promise<void>) | undefined;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function lifetimeMs(cert: X509Certificate): number {
  return cert.validToDate.getTime() - cert.validFromDate.getTime();
}

/** When a certificate on disk is due for renewal, if it is ours, matches its key and is not due yet. */
async function reusable(dir: string, id: string, now: number): Promise<number | undefined> {
  try {
    const [chain, key] = await Promise.all([
      readFile(join(dir, CERTIFICATES_FILE), 'utf8'),
      readFile(join(dir, PRIVATE_KEY_FILE), 'utf8'),
    ]);
    const leaf = new X509Certificate(chain.match(PEM_BLOCK)?.[0] ?? '');
    if (!leaf.checkPrivateKey(createPrivateKey(key))) return undefined;
    if (!leaf.subjectAltName?.split(', ').includes(`URI:${id}`)) return undefined;
    const due = leaf.validFromDate.getTime() + RENEW_AT * lifetimeMs(leaf);
    return due > now ? due : undefined;
  } catch {
    return undefined;
  }
}

/** The refresh task: reuses a good certificate, else issues and writes a new one; returns when to renew. */
export function workloadCertificateTask(o: WorkloadCertOptions): () => Promise<number> {
  const dir = join(o.baseDir, WORKLOAD_CERT_DIR);
  const id = spiffeId(o.trustDomain, o.namespace, o.serviceAccount);
  let first = true;
  return async () => {
    const now = o.clock.now().getTime();
    const renewal = !first;
    if (first) {
      first = false;
      const due = await reusable(dir, id, now);
      if (due !== undefined) {
        o.log.info('reusing the workload certificate', { spiffeId: id, renewAt: new Date(due).toISOString() });
        return due;
      }
    }
    const token = (await readFile(o.tokenFile, 'utf8')).trim();
    const { keyPem, csrPem } = workloadKeyAndCsr(o.keyType, o.trustDomain, id);
    const member = `serviceAccount:${o.trustDomain}[${o.namespace}/${o.serviceAccount}]`;
    const issued = await createCertificate(
      o.pool,
      csrPem,
      WORKLOAD_CERT_LIFETIME_SECONDS,
      token,
      member,
      o.env,
      o.signal,
    );
    const leaf = new X509Certificate(issued.certificatePem);
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) {
      throw new KrunError(`${o.pool} returned a certificate for another key`);
    }
    const root = issued.chainPems.at(-1);
    if (!root) throw new KrunError(`${o.pool} returned a certificate without its chain`);
    const pem = (text: string) => (text.endsWith('\n') ? text : `${text}\n`);
    const files = new Map<string, ProjectedFile>([
      [
        CERTIFICATES_FILE,
        { data: Buffer.from([issued.certificatePem, ...issued.chainPems].map(pem).join('')), mode: 0o644 },
      ],
      [
        PRIVATE_KEY_FILE,
        o.proxyGroup === undefined
          ? { data: Buffer.from(keyPem), mode: 0o600 }
          : { data: Buffer.from(keyPem), mode: 0o640, owner: { uid: o.owner?.uid ?? 0, gid: o.proxyGroup } },
      ],
      [CA_CERTIFICATES_FILE, { data: Buffer.from(pem(root)), mode: 0o644 }],
    ]);
    await writeProjected(dir, files, { owner: o.owner, now: o.clock.now() });
    await chmod(dir, 0o755); // the original made it 0660: not even searchable
    const names = leaf.subjectAltName ?? '';
    if (!names.split(', ').includes(`URI:${id}`)) {
      o.log.warn('the CA pool reflected another identity than the workload expects', { expected: id, got: names });
    }
    const due = now + RENEW_AT * lifetimeMs(leaf);
    o.log.info('issued the workload certificate', {
      pool: o.pool,
      spiffeId: id,
      notAfter: leaf.validToDate.toISOString(),
      renewAt: new Date(due).toISOString(),
    });
    if (renewal) await o.onRenewed?.();
    return due;
  };
}
