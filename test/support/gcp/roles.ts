// The predefined roles the emulator knows, with the permissions of each that the emulated methods check. Real roles
// hold many more permissions; these are the ones that decide the emulated methods' outcome.

const ROLES: Readonly<Record<string, readonly string[]>> = {
  'roles/owner': ['*'],
  // Editors can do everything but read or change IAM policies.
  'roles/editor': ['*', '!*.getIamPolicy', '!*.setIamPolicy'],
  'roles/viewer': ['*.get', '*.list', '*.getIamPolicy'],
  'roles/browser': ['resourcemanager.projects.get'],
  'roles/resourcemanager.projectIamAdmin': [
    'resourcemanager.projects.getIamPolicy',
    'resourcemanager.projects.setIamPolicy',
  ],
  'roles/iam.serviceAccountAdmin': [
    'iam.serviceAccounts.create',
    'iam.serviceAccounts.get',
    'iam.serviceAccounts.list',
    'iam.serviceAccounts.delete',
    'iam.serviceAccounts.update',
    'iam.serviceAccounts.getIamPolicy',
    'iam.serviceAccounts.setIamPolicy',
  ],
  'roles/iam.serviceAccountKeyAdmin': [
    'iam.serviceAccountKeys.create',
    'iam.serviceAccountKeys.delete',
    'iam.serviceAccountKeys.get',
    'iam.serviceAccountKeys.list',
    'iam.serviceAccounts.get',
    'iam.serviceAccounts.list',
  ],
  'roles/iam.serviceAccountViewer': ['iam.serviceAccounts.get', 'iam.serviceAccounts.list'],
  'roles/iam.serviceAccountTokenCreator': [
    'iam.serviceAccounts.getAccessToken',
    'iam.serviceAccounts.getOpenIdToken',
    'iam.serviceAccounts.signBlob',
    'iam.serviceAccounts.signJwt',
  ],
  'roles/iam.serviceAccountOpenIdTokenCreator': ['iam.serviceAccounts.getOpenIdToken'],
  'roles/iam.workloadIdentityUser': ['iam.serviceAccounts.getAccessToken', 'iam.serviceAccounts.getOpenIdToken'],
  'roles/container.clusterViewer': ['container.clusters.get', 'container.clusters.list'],
  'roles/container.viewer': ['container.clusters.get', 'container.clusters.list'],
  'roles/container.admin': ['container.*'],
  'roles/gkehub.viewer': ['gkehub.memberships.get', 'gkehub.memberships.list'],
  'roles/gkehub.admin': ['gkehub.*'],
  'roles/gkehub.gatewayReader': ['gkehub.gateway.get'],
  'roles/gkehub.gatewayEditor': [
    'gkehub.gateway.get',
    'gkehub.gateway.post',
    'gkehub.gateway.put',
    'gkehub.gateway.patch',
    'gkehub.gateway.delete',
  ],
  'roles/gkehub.gatewayAdmin': ['gkehub.gateway.*'],
  'roles/privateca.workloadCertificateRequester': ['privateca.certificates.createForSelf', 'privateca.caPools.get'],
  'roles/privateca.certificateRequester': ['privateca.certificates.create'],
  'roles/privateca.certificateManager': ['privateca.certificates.create', 'privateca.caPools.get'],
  'roles/run.invoker': ['run.routes.invoke'],
  'roles/run.viewer': ['run.services.get', 'run.services.list', 'run.services.getIamPolicy'],
  'roles/run.developer': [
    'run.services.get',
    'run.services.list',
    'run.services.create',
    'run.services.update',
    'run.services.delete',
    'run.services.getIamPolicy',
    'run.operations.get',
  ],
  'roles/run.admin': ['run.*'],
};

function matches(pattern: string, permission: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return permission.endsWith(pattern.slice(1));
  if (pattern.endsWith('.*')) return permission.startsWith(pattern.slice(0, -1));
  return pattern === permission;
}

export function knownRole(role: string): boolean {
  return role in ROLES || role.startsWith('projects/') || role.startsWith('organizations/');
}

/** Whether `role` grants `permission` (custom roles grant nothing here). */
export function roleGrants(role: string, permission: string): boolean {
  const patterns = ROLES[role] ?? [];
  if (patterns.some((p) => p.startsWith('!') && matches(p.slice(1), permission))) return false;
  return patterns.some((p) => !p.startsWith('!') && matches(p, permission));
}
