// Dialing a resolved target: one HboneClient (one HTTP/2 connection, tunnels as streams) with the operator's
// credentials, and the refusals an operator can meet turned into one sentence with the fix.
import type { KrunContext } from '../context.ts';
import { TransportError } from '../errors.ts';
import type { GoogleAuthSource } from '../gcp/iam-admin.ts';
import { readCaFile } from '../hbone/ca-file.ts';
import { HboneClient, type Tunnel, tunnelStatus } from '../hbone/client.ts';
import { tokenSourceFor } from '../hbone/run-client.ts';
import type { ResolvedTarget } from './target.ts';

export interface TunnelOptions {
  readonly auth?: 'google' | 'none' | undefined;
  readonly tokenFile?: string | undefined;
  readonly caFile?: string | undefined;
  readonly impersonateServiceAccount?: string | undefined;
}

/** The tunnel target of the SSH debug server. */
export const SSH_TARGET = '22';

export function hboneClientFor(
  target: ResolvedTarget,
  options: TunnelOptions,
  ctx: KrunContext,
  auth: GoogleAuthSource,
): HboneClient {
  const ca = readCaFile(options.caFile);
  const tokens = tokenSourceFor(
    {
      url: target.origin.origin,
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.tokenFile ? { tokenFile: options.tokenFile } : {}),
      ...(options.impersonateServiceAccount ? { impersonateServiceAccount: options.impersonateServiceAccount } : {}),
    },
    target.origin,
    auth,
  );
  return new HboneClient({ origin: target.origin, tokens, log: ctx.log, ...(ca ? { ca } : {}) });
}

/** `gcloud run services …` flags naming the service, or a placeholder for URLs. */
function serviceArgs(target: ResolvedTarget): string {
  const s = target.service;
  return s ? `${s.name} --project ${s.project} --region ${s.region}` : 'SERVICE';
}

export function sshAuthHint(target: ResolvedTarget): string {
  return `set SSH_AUTH on the service to your public key: gcloud run services update ${serviceArgs(target)} --update-env-vars SSH_AUTH="$(cat ~/.ssh/id_ed25519.pub)"`;
}

/** OpenSSL's verdicts on a server certificate that no trusted CA vouches for (or for another name). */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Opens one tunnel to `what` (a port or name) on the target; refusals name their fix. */
export async function openTunnel(
  client: HboneClient,
  target: ResolvedTarget,
  what: string,
  ctx: KrunContext,
): Promise<Tunnel> {
  try {
    return await client.open(what);
  } catch (err) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const { expiredCredentials } = await import('../gcp/iam-admin.ts');
    const expired = expiredCredentials(err);
    if (expired) throw expired;
    const status = tunnelStatus(err);
    const where = target.service ? `Cloud Run service ${target.service.name}` : target.origin.origin;
    if (status === 403) {
      throw new TransportError(`${where} refused the tunnel (HTTP 403): your account lacks roles/run.invoker`, {
        hints: [
          `grant roles/run.invoker: gcloud run services add-iam-policy-binding ${serviceArgs(target)} --member user:YOU@example.com --role roles/run.invoker`,
        ],
        cause: err,
      });
    }
    if (status === 401) {
      throw new TransportError(`${where} rejected your credentials (HTTP 401)`, {
        hints: ['run gcloud auth login, then gcloud auth application-default login', '--token-file FILE'],
        cause: err,
      });
    }
    const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    if (code !== undefined && UNTRUSTED_CERTIFICATE.has(code)) {
      throw new TransportError((err as Error).message, {
        hints: [
          "--ca-file CA.pem (or KRUN_CA_FILE) to trust the CA that signed the workload's certificate",
          'check that its certificate names the host you gave',
        ],
        cause: err,
      });
    }
    if (what === SSH_TARGET && (status === 404 || status === 502)) {
      throw new TransportError(`${where} has no SSH debug server running (HTTP ${status})`, {
        hints: [sshAuthHint(target)],
        cause: err,
      });
    }
    throw err;
  }
}
