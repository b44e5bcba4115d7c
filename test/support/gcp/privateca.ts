// Certificate Authority Service (privateca.googleapis.com v1): projects.locations.caPools.certificates.create with a
// PEM CSR, signed by the pool's test root CA (test/support/pki.ts). REFLECTED_SPIFFE takes the SAN from the caller's
// identity (a GKE workload identity's federated token: serviceAccount:P.svc.id.goog[NS/KSA] →
// spiffe://P.svc.id.goog/ns/NS/sa/KSA) and needs privateca.certificates.createForSelf; DEFAULT takes the CSR's and
// needs privateca.certificates.create (the public API's permissions).
import { x509 } from '../pki.ts';
import { GoogleApiError, invalidArgument, notFound, type Route, route } from './http.ts';
import type { GcpState } from './state.ts';

const SEG = '([^/:]+)';
const WORKLOAD_IDENTITY = /^serviceAccount:([^[]+\.svc\.id\.goog)\[([^/]+)\/([^\]]+)\]$/;

function duration(value: unknown): number {
  const match = typeof value === 'string' ? /^(\d+)(?:\.\d+)?s$/.exec(value) : null;
  if (!match)
    throw invalidArgument(`Invalid value at 'certificate.lifetime' (type.googleapis.com/google.protobuf.Duration)`);
  return Number(match[1]);
}

function timestamp(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

export function privatecaRoutes(state: GcpState): Route[] {
  return [
    route('POST', new RegExp(`^/v1/projects/${SEG}/locations/${SEG}/caPools/${SEG}/certificates$`), async (call) => {
      const [p = '', location = '', poolName = ''] = call.params;
      const projectId = state.project(p)?.projectId ?? p;
      const resource = `projects/${projectId}/locations/${location}/caPools/${poolName}`;
      const mode = String(call.body.subjectMode ?? 'DEFAULT');
      if (!['DEFAULT', 'REFLECTED_SPIFFE', 'SUBJECT_REQUEST_MODE_UNSPECIFIED'].includes(mode)) {
        throw invalidArgument(
          `Invalid value at 'certificate.subject_mode' (type.googleapis.com/google.cloud.security.privateca.v1.SubjectRequestMode), "${mode}"`,
        );
      }
      const reflected = mode === 'REFLECTED_SPIFFE';
      const permission = reflected ? 'privateca.certificates.createForSelf' : 'privateca.certificates.create';
      const caller = call.authorize(
        permission,
        [resource, `projects/${projectId}`],
        `projects/${p}/locations/${location}/caPools/${poolName}`,
      );
      const pool = state.caPools.get(resource);
      if (!pool) throw notFound(`Resource '${resource}' was not found`);
      const id = call.query.get('certificateId') ?? '';
      if (id && !/^[a-zA-Z0-9_-]{1,63}$/.test(id)) throw invalidArgument(`Invalid certificate id: ${id}`);
      if (id && pool.issued.some((c) => c.id === id)) {
        throw new GoogleApiError('ALREADY_EXISTS', `Resource '${resource}/certificates/${id}' already exists`);
      }
      if (call.body.pemCsr !== undefined && call.body.config !== undefined) {
        throw invalidArgument('Invalid JSON payload received. Multiple values for oneof "certificate_config".');
      }
      if (typeof call.body.pemCsr !== 'string') {
        // The public API also takes `config` (with config.publicKey); the emulator issues from CSRs only.
        throw new GoogleApiError('UNIMPLEMENTED', 'The emulator issues certificates from pemCsr only.');
      }
      const lifetime = Math.min(duration(call.body.lifetime), pool.maximumLifetimeSeconds ?? Number.POSITIVE_INFINITY);
      let csr: x509.Pkcs10CertificateRequest;
      try {
        csr = new x509.Pkcs10CertificateRequest(call.body.pemCsr);
      } catch {
        throw invalidArgument('Invalid CSR: it could not be parsed.');
      }
      if (!(await csr.verify())) throw invalidArgument('Invalid CSR: its signature does not verify.');
      let names: x509.JsonGeneralName[];
      if (reflected) {
        const identity = WORKLOAD_IDENTITY.exec(caller.member);
        if (!identity) {
          throw new GoogleApiError(
            'FAILED_PRECONDITION',
            `The caller ${caller.member} does not have a SPIFFE identity.`,
          );
        }
        const [, trustDomain, ns, ksa] = identity;
        names = [{ type: 'url', value: `spiffe://${trustDomain}/ns/${ns}/sa/${ksa}` }];
      } else {
        names = (() => {
          const san = csr.getExtension('2.5.29.17');
          return san ? new x509.SubjectAlternativeNameExtension(san.rawData).names.toJSON() : [];
        })();
      }
      // The requested usages, as a pool without a baseline would take them; never a CA.
      const requested = csr.extensions.filter((e) => e.type === '2.5.29.15' || e.type === '2.5.29.37');
      const now = new Date();
      const caNotAfter = new x509.X509Certificate(pool.ca.certPem).notAfter;
      const notAfter = new Date(Math.min(now.getTime() + lifetime * 1000, caNotAfter.getTime()));
      const certificatePem = await pool.ca.sign({
        publicKey: await csr.publicKey.export(),
        subject: reflected ? '' : csr.subject,
        notBefore: now,
        notAfter,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          ...requested,
          ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, reflected)] : []),
        ],
      });
      const certificateId = id || crypto.randomUUID();
      pool.issued.push({ id: certificateId, member: caller.member, request: call.body });
      return {
        name: `${resource}/certificates/${certificateId}`,
        pemCsr: call.body.pemCsr,
        issuerCertificateAuthority: `${resource}/certificateAuthorities/root`,
        lifetime: `${Math.round((notAfter.getTime() - now.getTime()) / 1000)}s`,
        pemCertificate: certificatePem,
        pemCertificateChain: [pool.ca.certPem],
        subjectMode: reflected ? 'REFLECTED_SPIFFE' : 'DEFAULT',
        createTime: timestamp(now),
        updateTime: timestamp(now),
      };
    }),
  ];
}
