// Which GKE cluster a workload joins when none is named: pure ranking, so every rule has a unit test, and the
// caller tries candidates in order (falling back when a control plane is unreachable).
import { NotFoundError } from '../errors.ts';
import type { GkeCluster } from './gke.ts';

/** Resource labels that mark a mesh config cluster: krun's own, and the one ASM sets. */
export const MESH_LABELS = ['krun-mesh', 'mesh_id'] as const;

export interface Candidate {
  readonly cluster: GkeCluster;
  readonly reason: string;
}

export interface Preference {
  /** The workload's region (us-central1): its clusters, regional or zonal, come first. */
  readonly region?: string | undefined;
  readonly name?: string | undefined;
  readonly location?: string | undefined;
}

export function inRegion(location: string, region: string | undefined): boolean {
  return region !== undefined && (location === region || location.startsWith(`${region}-`));
}

const isMesh = (c: GkeCluster) => MESH_LABELS.some((l) => (c.resourceLabels[l] ?? '') !== '');

export function rankClusters(clusters: readonly GkeCluster[], pref: Preference): Candidate[] {
  const byName = [...clusters].sort((a, b) => a.name.localeCompare(b.name) || a.location.localeCompare(b.location));
  if (pref.name) {
    const named = byName.filter((c) => c.name === pref.name && (!pref.location || c.location === pref.location));
    if (named.length === 0) {
      throw new NotFoundError(`no GKE cluster named ${pref.name}${pref.location ? ` in ${pref.location}` : ''}`, {
        hints: [
          `clusters found: ${byName.map((c) => `${c.location}/${c.name}`).join(', ') || '(none)'}`,
          'fix CLUSTER_NAME / CLUSTER_LOCATION',
        ],
      });
    }
    return [...named]
      .sort((a, b) => Number(inRegion(b.location, pref.region)) - Number(inRegion(a.location, pref.region)))
      .map((cluster) => ({
        cluster,
        reason: `named by CLUSTER_NAME${inRegion(cluster.location, pref.region) ? ', in this region' : ''}`,
      }));
  }
  // Mesh-labelled clusters first (an explicit signal, better than a naming habit), then the original's `istio`
  // prefix, then anything; within each, the workload's own region before the others.
  const here = (c: GkeCluster) => inRegion(c.location, pref.region);
  const rules: [string, (c: GkeCluster) => boolean][] = [
    [`labelled ${MESH_LABELS.join('/')}, in region ${pref.region}`, (c) => isMesh(c) && here(c)],
    [`labelled ${MESH_LABELS.join('/')}, another region`, isMesh],
    [`name starts with "istio", in region ${pref.region}`, (c) => c.name.startsWith('istio') && here(c)],
    ['name starts with "istio", another region', (c) => c.name.startsWith('istio')],
    [`in region ${pref.region}`, here],
    ['another region', () => true],
  ];
  const out: Candidate[] = [];
  const taken = new Set<GkeCluster>();
  for (const [reason, match] of rules) {
    for (const cluster of byName) {
      if (!taken.has(cluster) && match(cluster)) {
        taken.add(cluster);
        out.push({ cluster, reason });
      }
    }
  }
  return out;
}
