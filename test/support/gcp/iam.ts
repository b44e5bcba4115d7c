// IAM (iam.googleapis.com/v1 service accounts and their policies), IAM Credentials (iamcredentials.googleapis.com/v1
// impersonation) and Cloud Resource Manager (cloudresourcemanager.googleapis.com v1 and v3 projects and their
// policies), as their discovery documents describe them.
import { type Call, GoogleApiError, invalidArgument, notFound, policyJson, type Route, route } from './http.ts';
import { knownRole } from './roles.ts';
import { type Binding, type GcpState, type Project, type ServiceAccount, StaleEtagError } from './state.ts';

const SEG = '([^/:]+)';

function permissionDenied(): GoogleApiError {
  return new GoogleApiError('PERMISSION_DENIED', 'The caller does not have permission');
}

/** setIamPolicy for any resource: validates the policy, honours the etag (409 ABORTED when stale). */
export function setIamPolicy(state: GcpState, resource: string, body: Record<string, unknown>) {
  const policy = body.policy as { version?: number; bindings?: Binding[]; etag?: string } | undefined;
  if (!policy || typeof policy !== 'object') throw invalidArgument('Request contains an invalid argument.');
  for (const binding of policy.bindings ?? []) {
    if (!knownRole(binding.role)) {
      throw invalidArgument(`Role ${binding.role} is not supported for this resource.`);
    }
    for (const member of binding.members ?? []) {
      if (
        !/^(allUsers|allAuthenticatedUsers|(user|serviceAccount|group|domain|principal|principalSet):.+)$/.test(member)
      ) {
        throw invalidArgument(`Invalid member: ${member}`);
      }
    }
  }
  try {
    return policyJson(state.setPolicy(resource, policy));
  } catch (err) {
    if (err instanceof StaleEtagError) {
      throw new GoogleApiError(
        'ABORTED',
        'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.',
      );
    }
    throw err;
  }
}

function project(state: GcpState, idOrNumber: string): Project | undefined {
  return state.project(idOrNumber);
}

function serviceAccountJson(sa: ServiceAccount) {
  return {
    name: `projects/${sa.projectId}/serviceAccounts/${sa.email}`,
    projectId: sa.projectId,
    uniqueId: sa.uniqueId,
    email: sa.email,
    ...(sa.displayName ? { displayName: sa.displayName } : {}),
    ...(sa.description ? { description: sa.description } : {}),
    etag: sa.etag,
    oauth2ClientId: sa.uniqueId,
    ...(sa.disabled ? { disabled: true } : {}),
  };
}

/** The project a service account email belongs to: `x@P.iam.gserviceaccount.com`. */
function projectOfEmail(email: string): string | undefined {
  return /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(email)?.[1];
}

/** Resolves `{sa}` in `projects/{p}/serviceAccounts/{sa}`, checking `permission` first (403 hides existence). */
function serviceAccountFor(state: GcpState, call: Call, projectParam: string, idParam: string, permission: string) {
  const sa = state.serviceAccount(idParam);
  const projectId = sa?.projectId ?? (projectParam === '-' ? projectOfEmail(idParam) : projectParam) ?? projectParam;
  const resources = sa
    ? [`projects/${sa.projectId}/serviceAccounts/${sa.email}`, `projects/${sa.projectId}`]
    : [`projects/${projectId}`];
  const caller = call.authorize(permission, resources, `projects/${projectParam}/serviceAccounts/${idParam}`);
  if (!sa) throw notFound(`Unknown service account`);
  return { sa, caller, resource: resources[0] ?? '' };
}

function seconds(duration: unknown, fallback: number): number {
  if (duration === undefined) return fallback;
  if (typeof duration === 'object' && duration && 'seconds' in duration) return Number(duration.seconds);
  const match = typeof duration === 'string' ? /^(\d+)(?:\.\d+)?s$/.exec(duration) : null;
  if (!match) throw invalidArgument(`Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration)`);
  return Number(match[1]);
}

export function iamRoutes(state: GcpState): Route[] {
  return [
    route('POST', new RegExp(`^/v1/projects/${SEG}/serviceAccounts$`), (call) => {
      const [projectParam = ''] = call.params;
      const p = project(state, projectParam);
      call.authorize('iam.serviceAccounts.create', [`projects/${p?.projectId ?? projectParam}`]);
      if (!p) throw notFound(`Project ${projectParam} not found.`);
      const accountId = String(call.body.accountId ?? '');
      if (!/^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$/.test(accountId)) {
        throw invalidArgument(
          `Invalid value for field 'accountId': '${accountId}'. Account ID must be between 6 and 30 characters.`,
        );
      }
      const email = `${accountId}@${p.projectId}.iam.gserviceaccount.com`;
      if (state.serviceAccounts.has(email)) {
        throw new GoogleApiError(
          'ALREADY_EXISTS',
          `Service account ${accountId} already exists within project projects/${p.projectId}.`,
        );
      }
      const spec = (call.body.serviceAccount ?? {}) as { displayName?: string; description?: string };
      return serviceAccountJson(
        state.addServiceAccount({
          projectId: p.projectId,
          accountId,
          displayName: spec.displayName ?? '',
          description: spec.description ?? '',
        }),
      );
    }),
    route('GET', new RegExp(`^/v1/projects/${SEG}/serviceAccounts$`), (call) => {
      const [projectParam = ''] = call.params;
      const p = project(state, projectParam);
      call.authorize('iam.serviceAccounts.list', [`projects/${p?.projectId ?? projectParam}`]);
      if (!p) throw notFound(`Project ${projectParam} not found.`);
      const accounts = [...state.serviceAccounts.values()].filter((sa) => sa.projectId === p.projectId);
      return accounts.length > 0 ? { accounts: accounts.map(serviceAccountJson) } : {};
    }),
    route('GET', new RegExp(`^/v1/projects/${SEG}/serviceAccounts/${SEG}$`), (call) => {
      const [p = '', id = ''] = call.params;
      return serviceAccountJson(serviceAccountFor(state, call, p, id, 'iam.serviceAccounts.get').sa);
    }),
    route('POST', new RegExp(`^/v1/projects/${SEG}/serviceAccounts/${SEG}/keys$`), async (call) => {
      const [p = '', id = ''] = call.params;
      const { sa } = serviceAccountFor(state, call, p, id, 'iam.serviceAccountKeys.create');
      const type = call.body.privateKeyType ?? 'TYPE_GOOGLE_CREDENTIALS_FILE';
      const algorithm = call.body.keyAlgorithm ?? 'KEY_ALG_RSA_2048';
      if (type !== 'TYPE_GOOGLE_CREDENTIALS_FILE' || algorithm !== 'KEY_ALG_RSA_2048') {
        throw invalidArgument(
          'Only privateKeyType TYPE_GOOGLE_CREDENTIALS_FILE and keyAlgorithm KEY_ALG_RSA_2048 are emulated.',
        );
      }
      const { key, keyFile } = await state.createServiceAccountKey(sa.email);
      return {
        name: key.name,
        privateKeyType: type,
        privateKeyData: Buffer.from(keyFile, 'utf8').toString('base64'),
        validAfterTime: key.validAfterTime,
        validBeforeTime: key.validBeforeTime,
        keyAlgorithm: algorithm,
        keyOrigin: 'GOOGLE_PROVIDED',
        keyType: 'USER_MANAGED',
      };
    }),
    route('POST', new RegExp(`^/v1/projects/${SEG}/serviceAccounts/${SEG}:getIamPolicy$`), (call) => {
      const [p = '', id = ''] = call.params;
      const { resource } = serviceAccountFor(state, call, p, id, 'iam.serviceAccounts.getIamPolicy');
      return policyJson(state.getPolicy(resource));
    }),
    route('POST', new RegExp(`^/v1/projects/${SEG}/serviceAccounts/${SEG}:setIamPolicy$`), (call) => {
      const [p = '', id = ''] = call.params;
      const { resource } = serviceAccountFor(state, call, p, id, 'iam.serviceAccounts.setIamPolicy');
      return setIamPolicy(state, resource, call.body);
    }),
  ];
}

export function iamCredentialsRoutes(state: GcpState): Route[] {
  return [
    route('POST', new RegExp(`^/v1/projects/${SEG}/serviceAccounts/${SEG}:generateAccessToken$`), (call) => {
      const [p = '', id = ''] = call.params;
      const { sa } = serviceAccountFor(state, call, p, id, 'iam.serviceAccounts.getAccessToken');
      const lifetime = seconds(call.body.lifetime, 3600);
      if (lifetime <= 0 || lifetime > 3600) {
        throw invalidArgument('The lifetime of an access token must be between 1 second and 3600 seconds.');
      }
      const scope = (call.body.scope as string[] | undefined) ?? [];
      if (scope.length === 0) throw invalidArgument('Scope required.');
      const { token, exp } = state.accessToken(sa.email, { lifetimeSeconds: lifetime, scopes: scope });
      return { accessToken: token, expireTime: new Date(exp * 1000).toISOString().replace('.000Z', 'Z') };
    }),
    route('POST', new RegExp(`^/v1/projects/${SEG}/serviceAccounts/${SEG}:generateIdToken$`), (call) => {
      const [p = '', id = ''] = call.params;
      const { sa } = serviceAccountFor(state, call, p, id, 'iam.serviceAccounts.getOpenIdToken');
      const audience = call.body.audience;
      if (typeof audience !== 'string' || !audience) throw invalidArgument('Audience required.');
      return { token: state.idToken(sa.email, audience, { includeEmail: call.body.includeEmail === true }) };
    }),
  ];
}

function projectV1(p: Project) {
  return {
    projectNumber: p.projectNumber,
    projectId: p.projectId,
    lifecycleState: 'ACTIVE',
    name: p.name,
    createTime: p.createTime,
    ...(Object.keys(p.labels).length > 0 ? { labels: p.labels } : {}),
    ...(p.parent ? { parent: p.parent } : {}),
  };
}

function projectV3(p: Project) {
  return {
    name: `projects/${p.projectNumber}`,
    ...(p.parent ? { parent: `${p.parent.type}s/${p.parent.id}` } : {}),
    projectId: p.projectId,
    state: 'ACTIVE',
    displayName: p.name,
    createTime: p.createTime,
    updateTime: p.createTime,
    etag: `W/"${p.projectNumber}"`,
    ...(Object.keys(p.labels).length > 0 ? { labels: p.labels } : {}),
  };
}

/** A project the caller may act on; Resource Manager answers 403 for projects that do not exist. */
function authorizedProject(state: GcpState, call: Call, idOrNumber: string, permission: string): Project {
  const p = state.project(idOrNumber);
  const claims = call.caller();
  if (!p || !state.allows(claims.member, permission, [`projects/${p.projectId}`])) throw permissionDenied();
  return p;
}

export function resourceManagerRoutes(state: GcpState): Route[] {
  return [
    route('GET', new RegExp(`^/v1/projects/${SEG}$`), (call) =>
      projectV1(authorizedProject(state, call, call.params[0] ?? '', 'resourcemanager.projects.get')),
    ),
    route('GET', new RegExp(`^/v3/projects/${SEG}$`), (call) =>
      projectV3(authorizedProject(state, call, call.params[0] ?? '', 'resourcemanager.projects.get')),
    ),
    route('POST', new RegExp(`^/v[13]/projects/${SEG}:getIamPolicy$`), (call) => {
      const p = authorizedProject(state, call, call.params[0] ?? '', 'resourcemanager.projects.getIamPolicy');
      return policyJson(state.getPolicy(`projects/${p.projectId}`));
    }),
    route('POST', new RegExp(`^/v[13]/projects/${SEG}:setIamPolicy$`), (call) => {
      const p = authorizedProject(state, call, call.params[0] ?? '', 'resourcemanager.projects.setIamPolicy');
      return setIamPolicy(state, `projects/${p.projectId}`, call.body);
    }),
  ];
}
