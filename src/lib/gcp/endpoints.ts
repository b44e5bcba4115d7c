// Google API base URLs. Overridable with gcloud's own variables (CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>), the way
// operators point gcloud at Private Service Connect or restricted endpoints; krun honours the same settings.
export type GoogleApi =
  | 'container'
  | 'gkehub'
  | 'run'
  | 'iam'
  | 'iamcredentials'
  | 'cloudresourcemanager'
  | 'sts'
  | 'privateca';

const DEFAULT_HOSTS: Record<GoogleApi, string> = {
  container: 'container.googleapis.com',
  gkehub: 'gkehub.googleapis.com',
  run: 'run.googleapis.com',
  iam: 'iam.googleapis.com',
  iamcredentials: 'iamcredentials.googleapis.com',
  cloudresourcemanager: 'cloudresourcemanager.googleapis.com',
  sts: 'sts.googleapis.com',
  privateca: 'privateca.googleapis.com',
};

/** The API's base URL, always ending in "/": `https://container.googleapis.com/` unless overridden. */
export function apiBase(api: GoogleApi, env: Readonly<Record<string, string | undefined>>): string {
  const override = env[`CLOUDSDK_API_ENDPOINT_OVERRIDES_${api.toUpperCase()}`];
  const base = override || `https://${DEFAULT_HOSTS[api]}/`;
  return base.endsWith('/') ? base : `${base}/`;
}
