// Finds the GKE cluster a workload on Google Cloud belongs to, with no configuration but the identity it runs as:
// local evidence first (never probe the metadata address off Google Cloud), then the metadata server, then the GKE
// API (and Fleet), then a connection whose bearer token is the Google access token, refreshed by the library.
import { KrunError, NotFoundError } from '../errors.ts';
import { KubeClient, KubeUnreachableError } from '../kube/client.ts';
import type { KubeConnection } from '../kube/kubeconfig.ts';
import type { Logger } from '../log/logger.ts';
import { connectGatewayServer, type GkeCluster, getCluster, listClusters, listMemberships } from './gke.ts';
import { googleAuth } from './iam-admin.ts';
import { type InstanceFacts, instanceFacts } from './metadata.ts';
import { detectPlatform } from './platform.ts';
import { type Candidate, rankClusters } from './select-cluster.ts';

type Env = Readonly<Record<string, string | undefined>>;

export interface GkeSettings {
  readonly projectId?: string | undefined;
  readonly projectNumber?: string | undefined;
  readonly clusterName?: string | undefined;
  readonly clusterLocation?: string | undefined;
}

export interface Discovered {
  readonly connection: KubeConnection;
  readonly facts: InstanceFacts | undefined;
  readonly project: string;
  readonly cluster: { readonly name: string; readonly location: string };
  readonly reason: string;
  /** gcloud's kubeconfig context name: gke_<P>_<L>_<N>, or connectgateway_<P>_<membership> through the gateway. */
  readonly contextName: string;
}

export interface MeshAddress {
  readonly project?: string | undefined;
  readonly location?: string | undefined;
  readonly name?: string | undefined;
}

/** The original's GKE MESH forms: gke://PROJECT, //container.googleapis.com/projects/P/locations/L/clusters/C, https://…/v1/… */
export function parseMesh(mesh: string | undefined): MeshAddress | undefined {
  if (!mesh || mesh.startsWith('td:')) return undefined; // Traffic Director: src/lib/mesh/td.ts
  const gke = /^gke:\/\/([^/]+)/.exec(mesh);
  if (gke) return { project: gke[1] };
  const path =
    /container\.googleapis\.com\/(?:v1\/)?projects\/([^/]+)(?:\/locations\/([^/]+)(?:\/clusters\/([^/]+))?)?/.exec(
      mesh,
    );
  if (path) return { project: path[1], location: path[2], name: path[3] };
  throw new KrunError(`MESH=${mesh} is not a form krun understands`, {
    hints: ['MESH=gke://PROJECT', 'MESH=//container.googleapis.com/projects/P/locations/L/clusters/C'],
  });
}

const gkeContext = (c: GkeCluster) => `gke_${c.project}_${c.location}_${c.name}`;

async function reachable(connection: KubeConnection): Promise<boolean> {
  const client = new KubeClient(connection);
  try {
    await client.get('/version', { timeoutMs: 5000 });
    return true;
  } catch (err) {
    if (err instanceof KubeUnreachableError) return false;
    return true; // it answered: reachability is all this checks
  } finally {
    client.close();
  }
}

export async function discoverGke(settings: GkeSettings, env: Env, log: Logger): Promise<Discovered | undefined> {
  const mesh = parseMesh(env.MESH);
  const platform = await detectPlatform(env);
  const configured = settings.projectId || mesh || env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!platform.onGoogleCloud && !configured) {
    log.debug('not on Google Cloud: skipping GKE discovery', { why: platform.reason });
    return undefined;
  }
  const facts = platform.onGoogleCloud ? await instanceFacts(env) : undefined;
  if (facts)
    log.debug('metadata server', {
      project: facts.projectId,
      region: facts.region,
      serviceAccount: facts.serviceAccount,
    });
  const known = settings.projectId ?? mesh?.project ?? facts?.projectId;
  // A known project spares the library its own search for one (it runs `gcloud config config-helper`).
  const auth = await googleAuth(known);
  const project = known ?? (await auth.getProjectId().catch(() => undefined));
  if (!project) {
    throw new KrunError('no Google Cloud project to look for clusters in', {
      hints: ['set PROJECT_ID, or MESH=gke://PROJECT'],
    });
  }
  const name = settings.clusterName ?? mesh?.name;
  const location = settings.clusterLocation ?? mesh?.location;
  let candidates: Candidate[];
  if (name && location) {
    candidates = [
      {
        cluster: await getCluster(auth, project, location, name, env),
        reason: 'named by CLUSTER_NAME and CLUSTER_LOCATION',
      },
    ];
  } else {
    const clusters = await listClusters(auth, project, env);
    candidates = clusters.length > 0 ? rankClusters(clusters, { region: facts?.region, name, location }) : [];
  }
  const token = async () => {
    const t = await auth.getAccessToken();
    if (!t) throw new KrunError('google-auth-library returned no access token');
    return t;
  };
  const toConnection = (c: GkeCluster, reason: string): KubeConnection => ({
    server: `https://${c.endpoint}`,
    ca: c.caCertificate || undefined,
    tokenProvider: token,
    source: `GKE cluster projects/${c.project}/locations/${c.location}/clusters/${c.name} (${reason})`,
  });
  const unreachable: string[] = [];
  for (const { cluster, reason } of candidates) {
    const connection = toConnection(cluster, reason);
    if (await reachable(connection)) {
      log.info('selected GKE cluster', { cluster: `${cluster.location}/${cluster.name}`, reason });
      return {
        connection,
        facts,
        project,
        cluster: { name: cluster.name, location: cluster.location },
        reason,
        contextName: gkeContext(cluster),
      };
    }
    log.warn('GKE cluster API unreachable; trying the next candidate', {
      cluster: `${cluster.location}/${cluster.name}`,
    });
    unreachable.push(`${cluster.location}/${cluster.name}`);
  }
  if (unreachable.length > 0) {
    throw new KrunError(`no candidate cluster's API server is reachable: ${unreachable.join(', ')}`, {
      hints: [
        'check authorized networks / private endpoint access from this network',
        'or set CLUSTER_NAME and CLUSTER_LOCATION',
      ],
    });
  }
  return fleet(auth, project, settings.projectNumber ?? facts?.projectNumber, env, log, toConnection, token, facts);
}

/** No GKE cluster in the project: a Fleet membership, reached directly (GKE) or through the Connect Gateway. */
async function fleet(
  auth: import('google-auth-library').GoogleAuth,
  project: string,
  projectNumber: string | undefined,
  env: Env,
  log: Logger,
  toConnection: (c: GkeCluster, reason: string) => KubeConnection,
  token: () => Promise<string>,
  facts: InstanceFacts | undefined,
): Promise<Discovered> {
  const memberships = await listMemberships(auth, project, env);
  const first = memberships[0];
  if (!first) {
    throw new NotFoundError(`no GKE cluster or Fleet membership in project ${project}`, {
      hints: [
        'create a cluster, or set KUBECONFIG / CLUSTER_NAME and CLUSTER_LOCATION',
        `check PROJECT_ID=${project} is the mesh's project`,
      ],
    });
  }
  const member = first.name.split('/').at(-1) ?? first.name;
  const gke = /projects\/([^/]+)\/locations\/([^/]+)\/clusters\/([^/]+)/.exec(first.gkeCluster ?? '');
  if (gke?.[1] && gke[2] && gke[3]) {
    const cluster = await getCluster(auth, gke[1], gke[2], gke[3], env);
    const reason = `Fleet membership ${member}`;
    log.info('selected GKE cluster', { cluster: `${cluster.location}/${cluster.name}`, reason });
    return {
      connection: toConnection(cluster, reason),
      facts,
      project,
      cluster: { name: cluster.name, location: cluster.location },
      reason,
      contextName: gkeContext(cluster),
    };
  }
  if (!projectNumber)
    throw new KrunError('the Connect Gateway needs the project number', { hints: ['set PROJECT_NUMBER'] });
  const server = connectGatewayServer(projectNumber, first.name, env);
  const reason = `Fleet membership ${member} through the Connect Gateway`;
  log.info('selected Fleet membership', { membership: first.name, reason });
  // The gateway presents a publicly trusted certificate: system roots, no cluster CA.
  const connection: KubeConnection = { server, tokenProvider: token, source: `${first.name} (${reason})` };
  return {
    connection,
    facts,
    project,
    cluster: { name: member, location: 'global' },
    reason,
    contextName: `connectgateway_${project}_${member}`,
  };
}
