// Cloud Run Admin API v2 `services.get` and Resource Manager `projects.get`, as REST through google-auth-library
// (no client library: one GET each). `krun register` needs a service's URL, `krun doctor` its ports, and
// `krun setup-cluster` the project number.
import type { GoogleAuth } from 'google-auth-library';
import { NotFoundError } from '../errors.ts';
import { apiBase } from './endpoints.ts';
import { call, statusOf } from './iam-admin.ts';

type Env = Readonly<Record<string, string | undefined>>;

export interface RunPort {
  readonly name?: string;
  readonly containerPort?: number;
}

export interface RunService {
  /** projects/P/locations/R/services/S */
  readonly name: string;
  /** The main URL (`https://S-HASH-CODE.a.run.app`). */
  readonly uri: string;
  /** Every URL the service answers on. */
  readonly urls: readonly string[];
  /** The ports of the serving containers (at most one in practice). */
  readonly ports: readonly RunPort[];
}

interface RawService {
  name?: string;
  uri?: string;
  urls?: string[];
  template?: { containers?: { ports?: RunPort[] }[] };
}

export async function getRunService(
  auth: GoogleAuth,
  project: string,
  region: string,
  service: string,
  env: Env,
  signal?: AbortSignal,
): Promise<RunService> {
  const name = `projects/${project}/locations/${region}/services/${service}`;
  let raw: RawService;
  try {
    raw = await call<RawService>(
      auth,
      {
        method: 'GET',
        url: `${apiBase('run', env)}v2/${name}`,
        what: `get Cloud Run service ${service} in ${region}`,
        project,
        role: 'roles/run.viewer',
      },
      signal,
    );
  } catch (err) {
    if (statusOf(err) === 404) {
      throw new NotFoundError(`Cloud Run service ${service} not found in region ${region} of project ${project}`, {
        hints: [`gcloud run services list --project ${project}`, '--region REGION'],
      });
    }
    throw err;
  }
  const uri = raw.uri ?? raw.urls?.[0];
  if (!uri) throw new NotFoundError(`Cloud Run service ${service} has no URL yet (is it ready?)`);
  return {
    name: raw.name ?? name,
    uri,
    urls: raw.urls ?? [uri],
    ports: (raw.template?.containers ?? []).flatMap((c) => c.ports ?? []),
  };
}

/** The services of a project in a region, by name (Cloud Run Admin API v2 `services.list`, every page). */
export async function listRunServices(
  auth: GoogleAuth,
  project: string,
  region: string,
  env: Env,
  signal?: AbortSignal,
): Promise<{ readonly name: string; readonly uri: string }[]> {
  const found: { name: string; uri: string }[] = [];
  let pageToken = '';
  do {
    const page = await call<{ services?: RawService[]; nextPageToken?: string }>(
      auth,
      {
        method: 'GET',
        url: `${apiBase('run', env)}v2/projects/${project}/locations/${region}/services${pageToken ? `?pageToken=${encodeURIComponent(pageToken)}` : ''}`,
        what: `list Cloud Run services in ${region}`,
        project,
        role: 'roles/run.viewer',
      },
      signal,
    );
    for (const s of page.services ?? []) {
      const uri = s.uri ?? s.urls?.[0];
      if (s.name && uri) found.push({ name: s.name.split('/').pop() as string, uri });
    }
    pageToken = page.nextPageToken ?? '';
  } while (pageToken);
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/** The project's number (Resource Manager v1 `projects.get`). */
export async function getProjectNumber(
  auth: GoogleAuth,
  project: string,
  env: Env,
  signal?: AbortSignal,
): Promise<string> {
  const raw = await call<{ projectNumber?: string }>(
    auth,
    {
      method: 'GET',
      url: `${apiBase('cloudresourcemanager', env)}v1/projects/${project}`,
      what: `get project ${project}`,
      project,
      role: 'roles/browser',
    },
    signal,
  );
  if (!raw.projectNumber) throw new NotFoundError(`project ${project} has no project number`);
  return raw.projectNumber;
}
