// The managed-mesh token chain where it is configured (KRUN_GOOGLE_TOKENS): the workload's ServiceAccount token for
// the trust domain → a Google STS federated access token for the cluster's identity namespace → optionally an access
// token of the mesh data-plane service account. Both Google tokens land next to istio-token, in the same atomic
// projected directory, and are refreshed with it.
import { UsageError } from '../errors.ts';
import { federatedToken, type GoogleToken, identityNamespaceAudience, impersonatedToken } from '../gcp/sts.ts';
import type { RunConfig } from './config.ts';

export const FEDERATED_TOKEN_FILE = 'google-federated-token';
export const DATAPLANE_TOKEN_FILE = 'google-dataplane-token';

export interface GoogleChain {
  readonly trustDomain: string;
  /** identitynamespace:<trust domain>:<cluster URL> */
  readonly audience: string;
  /** Impersonated with the federated token when set (KRUN_GOOGLE_TOKENS=dataplane). */
  readonly dataplaneServiceAccount?: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The chain krun is configured for, or undefined when KRUN_GOOGLE_TOKENS is off; a usage error when it can't be. */
export function googleChain(config: RunConfig, env: GoogleChain['env']): GoogleChain | undefined {
  const mode = config.googleTokens.value;
  if (mode === 'off') return undefined;
  const clusterUrl = config.clusterUrl.value;
  if (!clusterUrl && config.clusterUrl.source !== 'unset') {
    // Discovered, but a Fleet member that is not a GKE cluster: no identity namespace to exchange tokens in.
    throw new UsageError(`${config.googleTokens.source} needs a GKE cluster: ${config.clusterUrl.source}`, {
      hints: [
        'register the GKE cluster in the fleet (its membership then names the cluster), or set PROJECT_ID, CLUSTER_LOCATION and CLUSTER_NAME',
        'KRUN_GOOGLE_TOKENS=off turns the chain off',
      ],
    });
  }
  if (!clusterUrl) {
    throw new UsageError(`${config.googleTokens.source} needs the GKE cluster: its project, location and name`, {
      hints: [
        'run on Google Cloud (the cluster is discovered), or set PROJECT_ID, CLUSTER_LOCATION and CLUSTER_NAME',
        'KRUN_GOOGLE_TOKENS=off turns the chain off',
      ],
    });
  }
  const dataplane = config.dataplaneServiceAccount.value;
  if (mode === 'dataplane' && !dataplane) {
    throw new UsageError(`${config.googleTokens.source} needs the data-plane service account`, {
      hints: ['set PROJECT_NUMBER (service-<number>@gcp-sa-meshdataplane…), or KRUN_DATAPLANE_SERVICE_ACCOUNT'],
    });
  }
  return {
    trustDomain: config.trustDomain.value,
    audience: identityNamespaceAudience(config.trustDomain.value, clusterUrl),
    dataplaneServiceAccount: mode === 'dataplane' ? dataplane : undefined,
    env,
  };
}

export interface GoogleTokens {
  readonly federated: GoogleToken;
  readonly dataplane?: GoogleToken | undefined;
}

/** Runs the chain from `subject`, a token whose audience is the trust domain. */
export async function exchangeTokens(
  subject: string,
  chain: GoogleChain,
  identity: { readonly namespace: string; readonly serviceAccount: string },
  signal?: AbortSignal,
): Promise<GoogleTokens> {
  const federated = await federatedToken(subject, chain.audience, chain.env, signal);
  if (!chain.dataplaneServiceAccount) return { federated };
  // The IAM member a federated token of this KSA acts as (what a workloadIdentityUser binding names).
  const member = `serviceAccount:${chain.trustDomain}[${identity.namespace}/${identity.serviceAccount}]`;
  const dataplane = await impersonatedToken(federated.token, chain.dataplaneServiceAccount, member, chain.env, signal);
  return { federated, dataplane };
}
