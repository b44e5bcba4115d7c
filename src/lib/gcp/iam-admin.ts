// IAM administration calls for `krun setup-namespace` and `krun doctor`: Google service accounts (IAM v1) and
// project IAM policies (Resource Manager v1), as REST through google-auth-library's authorised client. Policy changes
// are read-modify-write with the etag, retried when another writer got in between (409 ABORTED).
import type { GoogleAuth } from 'google-auth-library';
import { AuthError, KrunError, PermissionError } from '../errors.ts';
import { apiBase } from './endpoints.ts';

type Env = Readonly<Record<string, string | undefined>>;

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

export interface IamBinding {
  readonly role: string;
  readonly members: readonly string[];
  readonly condition?: unknown;
}

export interface IamPolicy {
  readonly version?: number;
  readonly bindings?: readonly IamBinding[];
  readonly etag?: string;
}

export interface GoogleServiceAccount {
  readonly email: string;
  readonly uniqueId?: string;
  readonly displayName?: string;
  readonly disabled?: boolean;
}

/** One grant: `member` (e.g. `serviceAccount:x@p.iam.gserviceaccount.com`) holds `role` on `resource`. */
export interface IamGrant {
  /** `projects/P`. */
  readonly resource: string;
  readonly role: string;
  readonly member: string;
}

interface GaxiosLike {
  response?: {
    status?: number;
    data?: { error?: string | { message?: string; status?: string }; error_description?: string };
  };
  message: string;
}

/** Google answered a policy write with 409 ABORTED: the etag was stale. */
export class StalePolicyError extends KrunError {}

/**
 * A GoogleAuth for the cloud-platform scope, loaded on demand (the library is heavy). With the project krun already
 * knows, the library skips its own search for one when it first looks up the credentials: that search runs
 * `gcloud config config-helper` (a child process of about half a second) before the metadata server.
 */
export async function googleAuth(projectId?: string): Promise<GoogleAuth> {
  const { GoogleAuth } = await import('google-auth-library');
  return new GoogleAuth({ scopes: [CLOUD_PLATFORM_SCOPE], ...(projectId ? { projectId } : {}) });
}

export type GoogleAuthSource = () => Promise<GoogleAuth>;

/**
 * One GoogleAuth for a whole command, made on first use: the credential lookup (key file, gcloud's ADC file, the
 * metadata server) runs once however many calls share it (Admin API, access and ID tokens). Without a use, neither
 * the library nor the project is looked up.
 */
export function sharedGoogleAuth(projectId: () => Promise<string | undefined>): GoogleAuthSource {
  let auth: Promise<GoogleAuth> | undefined;
  return () => {
    auth ??= projectId().then(googleAuth);
    return auth;
  };
}

/** The email of the credentials krun acts as, when the credentials say. */
export async function callerEmail(auth: GoogleAuth): Promise<string | undefined> {
  return auth.getCredentials().then(
    (c) => c.client_email,
    () => undefined,
  );
}

export interface CallSpec {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly body?: unknown;
  /** "create Google service account x", for messages. */
  readonly what: string;
  readonly project: string;
  /** The role that grants the call, for the hint on 403. */
  readonly role: string;
}

/**
 * The error for a failure that (maybe as the cause of another) is Google's token endpoint refusing to refresh the
 * credentials (OAuth's invalid_grant): the gcloud login behind them expired or was revoked.
 */
export function expiredCredentials(err: unknown): AuthError | undefined {
  for (let e = err as (GaxiosLike & { cause?: unknown }) | undefined; e; e = e.cause as typeof e) {
    const data = e.response?.data;
    if (data?.error === 'invalid_grant' || data?.error === 'invalid_rapt') {
      return new AuthError(
        `your Google credentials have expired or were revoked (${data.error_description ?? data.error})`,
        {
          hints: ['run gcloud auth login, then gcloud auth application-default login'],
          cause: err,
        },
      );
    }
  }
  return undefined;
}

/** One REST call through google-auth-library, its failures turned into errors that name the fix. */
export async function call<T>(auth: GoogleAuth, spec: CallSpec, signal?: AbortSignal): Promise<T> {
  try {
    const res = await auth.request<T>({
      url: spec.url,
      method: spec.method,
      ...(spec.body === undefined ? {} : { data: spec.body }),
      timeout: 15_000,
      retry: false,
      ...(signal ? { signal } : {}),
    });
    return res.data;
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    const expired = expiredCredentials(err);
    if (expired) throw expired;
    const e = err as GaxiosLike;
    const status = e.response?.status;
    const error = e.response?.data?.error;
    const detail = (typeof error === 'object' ? error.message : undefined) ?? e.message;
    if (status === 403) {
      const who = await callerEmail(auth);
      const member = who ? `${who.endsWith('.gserviceaccount.com') ? 'serviceAccount' : 'user'}:${who}` : 'MEMBER';
      throw new PermissionError(
        `forbidden: ${who ?? "krun's Google identity"} may not ${spec.what} in project ${spec.project}: ${detail}`,
        { hints: [`gcloud projects add-iam-policy-binding ${spec.project} --member ${member} --role ${spec.role}`] },
      );
    }
    if (status === 409 && typeof error === 'object' && error.status === 'ABORTED') {
      throw new StalePolicyError(`${spec.what}: ${detail}`, { cause: err });
    }
    if (status === 401) {
      throw new KrunError(`Google rejected krun's credentials to ${spec.what}: ${detail}`, {
        hints: ['gcloud auth application-default login', 'check GOOGLE_APPLICATION_CREDENTIALS'],
      });
    }
    throw Object.assign(new KrunError(`can't ${spec.what} in project ${spec.project}: ${detail}`, { cause: err }), {
      status,
    });
  }
}

export function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown }).status;
  return typeof s === 'number' ? s : undefined;
}

export async function getServiceAccount(
  auth: GoogleAuth,
  project: string,
  email: string,
  env: Env,
  signal?: AbortSignal,
): Promise<GoogleServiceAccount | undefined> {
  try {
    return await call<GoogleServiceAccount>(
      auth,
      {
        method: 'GET',
        url: `${apiBase('iam', env)}v1/projects/${project}/serviceAccounts/${encodeURIComponent(email)}`,
        what: `get Google service account ${email}`,
        project,
        role: 'roles/iam.serviceAccountViewer',
      },
      signal,
    );
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

export async function createServiceAccount(
  auth: GoogleAuth,
  project: string,
  spec: { accountId: string; displayName: string; description: string },
  env: Env,
  signal?: AbortSignal,
): Promise<GoogleServiceAccount> {
  return call<GoogleServiceAccount>(
    auth,
    {
      method: 'POST',
      url: `${apiBase('iam', env)}v1/projects/${project}/serviceAccounts`,
      body: {
        accountId: spec.accountId,
        serviceAccount: { displayName: spec.displayName, description: spec.description },
      },
      what: `create Google service account ${spec.accountId}`,
      project,
      role: 'roles/iam.serviceAccountAdmin',
    },
    signal,
  );
}

export async function getProjectPolicy(
  auth: GoogleAuth,
  project: string,
  env: Env,
  signal?: AbortSignal,
): Promise<IamPolicy> {
  return call<IamPolicy>(
    auth,
    {
      method: 'POST',
      url: `${apiBase('cloudresourcemanager', env)}v1/projects/${project}:getIamPolicy`,
      body: { options: { requestedPolicyVersion: 3 } },
      what: 'get the IAM policy',
      project,
      role: 'roles/resourcemanager.projectIamAdmin',
    },
    signal,
  );
}

export async function setProjectPolicy(
  auth: GoogleAuth,
  project: string,
  policy: IamPolicy,
  env: Env,
  signal?: AbortSignal,
): Promise<IamPolicy> {
  return call<IamPolicy>(
    auth,
    {
      method: 'POST',
      url: `${apiBase('cloudresourcemanager', env)}v1/projects/${project}:setIamPolicy`,
      body: { policy },
      what: 'set the IAM policy',
      project,
      role: 'roles/resourcemanager.projectIamAdmin',
    },
    signal,
  );
}

/** Whether `policy` already grants `role` to `member` unconditionally. */
export function hasMember(policy: IamPolicy, role: string, member: string): boolean {
  return (policy.bindings ?? []).some((b) => b.role === role && !b.condition && b.members.includes(member));
}

/** `policy` with `member` added to the unconditional binding of each role (pure; bindings it doesn't touch kept). */
export function withMembers(policy: IamPolicy, grants: readonly { role: string; member: string }[]): IamPolicy {
  const bindings = (policy.bindings ?? []).map((b) => ({ ...b, members: [...b.members] }));
  for (const { role, member } of grants) {
    const binding = bindings.find((b) => b.role === role && !b.condition);
    if (!binding) bindings.push({ role, members: [member] });
    else if (!binding.members.includes(member)) binding.members.push(member);
  }
  return { ...policy, bindings };
}

/** `serviceAccount:` for Google service accounts, `user:` for other emails; members (`x:y`) unchanged. */
export function memberOf(principal: string): string {
  if (principal.includes(':')) return principal;
  return principal.endsWith('.gserviceaccount.com') ? `serviceAccount:${principal}` : `user:${principal}`;
}

/**
 * Adds the grants on one project that its policy lacks: read, modify, write with the etag, and start over (up to
 * `attempts` times) when the write says another change got in first. Returns the grants that were missing.
 */
export async function ensureProjectGrants(
  auth: GoogleAuth,
  project: string,
  grants: readonly IamGrant[],
  env: Env,
  options: { apply: boolean; attempts?: number; signal?: AbortSignal } = { apply: true },
): Promise<IamGrant[]> {
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    const policy = await getProjectPolicy(auth, project, env, options.signal);
    const missing = grants.filter((g) => !hasMember(policy, g.role, g.member));
    if (missing.length === 0 || !options.apply) return missing;
    try {
      // Version 3 keeps conditional bindings intact on write.
      await setProjectPolicy(auth, project, { ...withMembers(policy, missing), version: 3 }, env, options.signal);
      return missing;
    } catch (err) {
      if (!(err instanceof StalePolicyError) || attempt >= attempts) throw err;
    }
  }
}
