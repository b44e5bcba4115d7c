// Finds the GKE cluster a workload on Google Cloud belongs to, with no configuration but the identity it runs as:
// local evidence first (never probe the metadata address off Google Cloud), then the metadata server, then the GKE
// API (and Fleet), then a connection whose bearer token is the Google access token, refreshed by the library.
import { KrunError, NotFoundError } from '../errors.ts';
import { KubeClient, KubeUnreachableError } from '../kube/client.ts';
import type { KubeConnection } from '../kube/kubeconfig.ts';
import type { Logger } from '../log/logger.ts';
import {
  connectGatewayServer,
  type GkeCluster,
  getCluster,
  listClusters,
  listMemberships,
  type Membership,
} from './gke.ts';
import { googleAuth } from './iam-admin.ts';
import { type InstanceFacts, instanceFacts } from './metadata.ts';
import { detectPlatform } from './platform.ts';
import { type Candidate, rankClusters } from './select-cluster.ts';
import { gkeClusterUrl } from './sts.ts';

type Env = Readonly<Record<string, string | undefined>>;

export interface GkeSettings {
  readonly projectId?: string | undefined;
  readonly projectNumber?: string | undefined;
  readonly clusterName?: string | undefined;
  readonly clusterLocation?: string | undefined;
}

/** The cluster krun joined, as configuration and the managed mesh's token exchange need it. */
export interface DiscoveredCluster {
  readonly name: string;
  readonly location: string;
  /**
   * GKE's resource URL of the cluster (pilot-agent's GKE_CLUSTER_URL; it names the STS audience). Its project may
   * not be the fleet's. Undefined for a Fleet member that is not a GKE cluster, with `noUrl` saying why.
   */
  readonly url: string | undefined;
  readonly noUrl?: string;
}

export interface Discovered {
  readonly connection: KubeConnection;
  readonly facts: InstanceFacts | undefined;
  readonly project: string;
  readonly cluster: DiscoveredCluster;
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
const gkeIdentity = (c: GkeCluster): DiscoveredCluster => ({
  name: c.name,
  location: c.location,
  url: gkeClusterUrl(c.project, c.location, c.name),
});

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
  const unreachable: GkeCluster[] = [];
  for (const { cluster, reason } of candidates) {
    const connection = toConnection(cluster, reason);
    if (await reachable(connection)) {
      log.info('selected GKE cluster', { cluster: `${cluster.location}/${cluster.name}`, reason });
      return {
        connection,
        facts,
        project,
        cluster: gkeIdentity(cluster),
        reason,
        contextName: gkeContext(cluster),
      };
    }
    log.warn('GKE cluster API unreachable; trying the next candidate', {
      cluster: `${cluster.location}/${cluster.name}`,
    });
    unreachable.push(cluster);
  }
  const memberships = await listMemberships(auth, project, env).catch((err: unknown) => {
    if (unreachable.length === 0) throw err;
    log.debug("can't list Fleet memberships", { error: String(err) });
    return [];
  });
  // A private cluster registered in the fleet is reached through the Connect Gateway.
  const linked = unreachable
    .map((c) => memberships.find((m) => m.gkeCluster === resourcePath(c)))
    .find((m) => m !== undefined);
  if (unreachable.length > 0 && !linked) {
    throw new KrunError(
      `no candidate cluster's API server is reachable: ${unreachable.map((c) => `${c.location}/${c.name}`).join(', ')}`,
      {
        hints: [
          'check authorized networks / private endpoint access from this network',
          'or register the cluster in the fleet to reach it through the Connect Gateway',
          'or set CLUSTER_NAME and CLUSTER_LOCATION',
        ],
      },
    );
  }
  const fleetOptions = { project, projectNumber: settings.projectNumber ?? facts?.projectNumber, facts };
  // A linked cluster that just did not answer is not asked again (a black-holed endpoint costs the whole timeout).
  const choice = linked ? { memberships: [linked], direct: false } : { memberships, direct: true };
  return fleet(auth, choice, fleetOptions, env, log, toConnection, token);
}

/** `projects/P/locations/L/clusters/N`, as a membership's resource link names its GKE cluster. */
const resourcePath = (c: GkeCluster) => `projects/${c.project}/locations/${c.location}/clusters/${c.name}`;

/**
 * A Fleet membership: its GKE cluster directly when that answers, otherwise through the Connect Gateway. Either way a
 * GKE member keeps its cluster's identity (from the membership's `endpoint.gkeCluster.resourceLink`, the cluster's
 * own project), which GKE_CLUSTER_URL and the STS audience name; a member that is not a GKE cluster has none.
 */
async function fleet(
  auth: import('google-auth-library').GoogleAuth,
  { memberships, direct }: { memberships: readonly Membership[]; direct: boolean },
  options: { project: string; projectNumber: string | undefined; facts: InstanceFacts | undefined },
  env: Env,
  log: Logger,
  toConnection: (c: GkeCluster, reason: string) => KubeConnection,
  token: () => Promise<string>,
): Promise<Discovered> {
  const { project, projectNumber, facts } = options;
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
  const gke = /^projects\/([^/]+)\/locations\/([^/]+)\/clusters\/([^/]+)$/.exec(first.gkeCluster ?? '');
  const [, gkeProject, gkeLocation, gkeName] = gke ?? [];
  if (gkeProject && gkeLocation && gkeName && direct) {
    const linked = await getCluster(auth, gkeProject, gkeLocation, gkeName, env).catch((err: unknown) => {
      log.debug("can't read the membership's GKE cluster; using the Connect Gateway", { error: String(err) });
      return undefined;
    });
    const reason = `Fleet membership ${member}`;
    const connection = linked ? toConnection(linked, reason) : undefined;
    if (linked && connection && (await reachable(connection))) {
      log.info('selected GKE cluster', { cluster: `${linked.location}/${linked.name}`, reason });
      return { connection, facts, project, cluster: gkeIdentity(linked), reason, contextName: gkeContext(linked) };
    }
  }
  const cluster: DiscoveredCluster =
    gkeProject && gkeLocation && gkeName
      ? { name: gkeName, location: gkeLocation, url: gkeClusterUrl(gkeProject, gkeLocation, gkeName) }
      : {
          name: member,
          location: 'global',
          url: undefined,
          noUrl: `Fleet membership ${member} is not a GKE cluster (it has no endpoint.gkeCluster.resourceLink)`,
        };
  if (!projectNumber)
    throw new KrunError('the Connect Gateway needs the project number', { hints: ['set PROJECT_NUMBER'] });
  const server = connectGatewayServer(projectNumber, first.name, env);
  const reason = `Fleet membership ${member} through the Connect Gateway`;
  log.info('selected Fleet membership', {
    membership: first.name,
    reason,
    ...(cluster.url ? { gkeCluster: cluster.url } : {}),
  });
  // The gateway presents a publicly trusted certificate: system roots, no cluster CA.
  const connection: KubeConnection = { server, tokenProvider: token, source: `${first.name} (${reason})` };
  return { connection, facts, project, cluster, reason, contextName: `connectgateway_${project}_${member}` };
}
