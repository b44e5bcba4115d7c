// What the metadata server says about this instance, through Google's own client (gcp-metadata, which honours
// GCE_METADATA_HOST). Called only once local evidence says krun runs on Google Cloud.
import { KrunError } from '../errors.ts';

export interface InstanceFacts {
  readonly projectId: string;
  readonly projectNumber?: string | undefined;
  /** us-central1: from instance/region (Cloud Run) or the zone (GCE). */
  readonly region?: string | undefined;
  readonly zone?: string | undefined;
  readonly instanceId?: string | undefined;
  /** The default service account's email. */
  readonly serviceAccount?: string | undefined;
}

const TIMEOUT_MS = 5000;

function lastSegment(path: string | undefined): string | undefined {
  return path?.split('/').at(-1) || undefined;
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer for ${what} within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function instanceFacts(env: Readonly<Record<string, string | undefined>>): Promise<InstanceFacts> {
  const metadata = await import('gcp-metadata');
  const optional = <T>(p: Promise<T>) => withTimeout(p, 'metadata').catch(() => undefined);
  let projectId: string;
  try {
    projectId = await withTimeout(metadata.project<string>('project-id'), 'project/project-id');
  } catch (err) {
    throw new KrunError(`can't read the project from the metadata server: ${(err as Error).message}`, {
      cause: err,
      hints: [
        env.GCE_METADATA_HOST
          ? `check GCE_METADATA_HOST=${env.GCE_METADATA_HOST}`
          : 'check that this runs on Cloud Run or GCE',
        'or configure the cluster explicitly (KUBECONFIG, or PROJECT_ID with CLUSTER_NAME and CLUSTER_LOCATION)',
      ],
    });
  }
  const [numeric, region, zone, id, email] = await Promise.all([
    optional(metadata.project<string | number>('numeric-project-id')),
    optional(metadata.instance<string>('region')),
    optional(metadata.instance<string>('zone')),
    optional(metadata.instance<string | number>('id')),
    optional(metadata.instance<string>('service-accounts/default/email')),
  ]);
  const zoneName = lastSegment(zone);
  return {
    projectId,
    projectNumber: numeric === undefined ? undefined : String(numeric),
    region: lastSegment(region) ?? zoneName?.replace(/-[a-z]$/, ''),
    zone: zoneName,
    instanceId: id === undefined ? undefined : String(id),
    serviceAccount: email,
  };
}
