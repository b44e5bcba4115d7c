// Certificate Authority Service (privateca.googleapis.com v1) CreateCertificate over REST, the call the original's
// CAS signer made over gRPC. The CSR travels in `pemCsr`, the API's field for one; the original put it in
// `config.publicKey.key`, which the API accepts only to extract the public key (the CSR's signature and requested
// extensions are then ignored). `pemCsr` and `config` are a oneof, so the leaf's usages are the CSR's requested
// extensions. REFLECTED_SPIFFE: CAS sets the SPIFFE SAN from the caller's identity, the federated token's.
import { randomBytes } from 'node:crypto';
import { KrunError, PermissionError } from '../errors.ts';
import { apiBase } from './endpoints.ts';
import { postJson } from './sts.ts';

type Env = Readonly<Record<string, string | undefined>>;

export const CA_POOL_PATTERN = /^projects\/([^/]+)\/locations\/([^/]+)\/caPools\/([^/]+)$/;
export const WORKLOAD_CERTIFICATE_ROLE = 'roles/privateca.workloadCertificateRequester';

export interface IssuedCertificate {
  readonly certificatePem: string;
  /** Issuer first, root last. */
  readonly chainPems: readonly string[];
}

/** `csr-workload-` and 8 random characters, like the original's certificate ids. */
function certificateId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `csr-workload-${[...randomBytes(8)].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

/** The gcloud command that lets `member` request workload certificates from `pool`. */
export function grantCommand(pool: string, member: string): string {
  const [, project, location, name] = CA_POOL_PATTERN.exec(pool) ?? [];
  return `gcloud privateca pools add-iam-policy-binding ${name} --project ${project} --location ${location} --role ${WORKLOAD_CERTIFICATE_ROLE} --member '${member}'`;
}

export async function createCertificate(
  pool: string,
  csrPem: string,
  lifetimeSeconds: number,
  token: string,
  member: string,
  env: Env,
  signal?: AbortSignal,
): Promise<IssuedCertificate> {
  const url = `${apiBase('privateca', env)}v1/${pool}/certificates?certificateId=${certificateId()}`;
  let res: Awaited<ReturnType<typeof postJson>>;
  try {
    res = await postJson(
      url,
      { lifetime: `${lifetimeSeconds}s`, pemCsr: csrPem, subjectMode: 'REFLECTED_SPIFFE' },
      signal,
      token,
    );
  } catch (err) {
    throw new KrunError(`can't reach Certificate Authority Service at ${url}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const { pemCertificate, pemCertificateChain } = res.json as {
    pemCertificate?: unknown;
    pemCertificateChain?: unknown;
  };
  if (res.status === 200 && typeof pemCertificate === 'string' && Array.isArray(pemCertificateChain)) {
    return { certificatePem: pemCertificate, chainPems: pemCertificateChain.map(String) };
  }
  const detail = (res.json.error as { message?: string } | undefined)?.message ?? res.text;
  if (res.status === 403) {
    throw new PermissionError(`forbidden: ${member} may not request workload certificates from ${pool}: ${detail}`, {
      hints: [
        grantCommand(pool, member),
        `the role ${WORKLOAD_CERTIFICATE_ROLE} holds privateca.certificates.createForSelf`,
      ],
    });
  }
  throw new KrunError(`Certificate Authority Service refused a certificate from ${pool} (${res.status}: ${detail})`, {
    hints: ['check CA_POOL (projects/P/locations/L/caPools/NAME) and that the pool has an enabled CA'],
  });
}
