// `krun doctor`: checks, one line each, everything setup-namespace and setup-cluster set up and `krun run` relies on,
// and says how to fix each failure. It only reads (and asks the API server SubjectAccessReviews): safe to run anytime.
import type { GoogleAuth } from 'google-auth-library';
import type { KrunContext } from '../context.ts';
import {
  callerEmail,
  type GoogleAuthSource,
  getProjectPolicy,
  getServiceAccount,
  hasMember,
  memberOf,
  sharedGoogleAuth,
} from '../gcp/iam-admin.ts';
import type { KubeClient } from '../kube/client.ts';
import { pickGateAddress, readGateFacts } from './gate-address.ts';
import { type KubeTarget, kubeClient } from './kube.ts';
import {
  CLUSTER_VIEWER_ROLE,
  checkNamespace,
  checkRunServiceName,
  googleServiceAccountEmail,
  ISTIO_SYSTEM,
  MESH_ENV,
} from './names.ts';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  /** What was found, or why it failed. */
  readonly detail?: string;
  /** The command or step that fixes a failure. */
  readonly fix?: string;
}

export interface DoctorOptions extends KubeTarget {
  readonly namespace?: string | undefined;
  readonly project?: string | undefined;
  readonly serviceAccount?: string | undefined;
  /** The ConfigMaps and Secrets the workload reads, as given to setup-namespace; default: any in the namespace. */
  readonly configMaps?: readonly string[] | undefined;
  readonly secrets?: readonly string[] | undefined;
  /** A Cloud Run service whose registration and HTTP/2 settings to check too. */
  readonly service?: string | undefined;
  readonly region?: string | undefined;
}

export interface DoctorDeps {
  readonly auth?: () => Promise<GoogleAuth>;
  readonly kube?: () => Promise<KubeClient>;
}

/** The keys setup-cluster writes to mesh-env (the original gate's), which the launcher reads when env leaves them unset. */
export const MESH_ENV_KEYS = ['PROJECT_ID', 'PROJECT_NUMBER', 'CLUSTER_NAME', 'CLUSTER_LOCATION'] as const;

/** The Istio resources `krun register` creates. */
export const ISTIO_CRDS = [
  'serviceentries.networking.istio.io',
  'workloadentries.networking.istio.io',
  'destinationrules.networking.istio.io',
] as const;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface AccessQuestion {
  readonly namespace: string;
  readonly verb: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly name?: string;
}

function describe(q: AccessQuestion): string {
  const what = q.subresource ? `${q.resource}/${q.subresource}` : q.resource;
  return `${q.verb} ${what}${q.name ? ` ${q.name}` : ''} in ${q.namespace}`;
}

/** `get` on each named object, or on any in the namespace when no names are given. */
function reads(
  resource: string,
  names: readonly string[] | undefined,
): { verb: string; resource: string; name?: string }[] {
  if (!names?.length) return [{ verb: 'get', resource }];
  return names.map((name) => ({ verb: 'get', resource, name }));
}

async function allowed(client: KubeClient, user: string, q: AccessQuestion, signal: AbortSignal): Promise<boolean> {
  const review = await client.post<{ status?: { allowed?: boolean } }>(
    '/apis/authorization.k8s.io/v1/subjectaccessreviews',
    {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user,
        groups: ['system:authenticated'],
        resourceAttributes: {
          namespace: q.namespace,
          verb: q.verb,
          group: '',
          resource: q.resource,
          ...(q.subresource ? { subresource: q.subresource } : {}),
          ...(q.name ? { name: q.name } : {}),
        },
      },
    },
    { signal },
  );
  return review.status?.allowed === true;
}

export async function doctor(options: DoctorOptions, ctx: KrunContext, deps: DoctorDeps = {}): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (check: Check) => checks.push(check);
  const client = await (deps.kube ?? (() => kubeClient(options, ctx)))();
  try {
    const namespace = options.namespace ?? client.connection.namespace ?? 'default';
    checkNamespace(namespace);
    const project = options.project ?? (ctx.env.CLOUDSDK_CORE_PROJECT || ctx.env.GOOGLE_CLOUD_PROJECT || undefined);
    const ksa = options.serviceAccount ?? 'default';
    const limits = [
      ...(options.configMaps?.length ? [`--config-map ${options.configMaps.join(',')}`] : []),
      ...(options.secrets?.length ? [`--secret ${options.secrets.join(',')}`] : []),
    ];
    const setup = [`krun setup-namespace ${namespace}`, `--project ${project ?? 'PROJECT'}`, ...limits].join(' ');
    const identity = project ? googleServiceAccountEmail(namespace, project) : undefined;
    // One credential lookup for the Google checks and the service checks.
    const auth = deps.auth ?? sharedGoogleAuth(async () => project);

    // Google Cloud
    if (!project || !identity) {
      add({
        name: 'Google Cloud project',
        ok: false,
        detail: 'no project given',
        fix: 'pass --project (or set KRUN_PROJECT)',
      });
    } else {
      await googleChecks(project, identity, setup, ctx, auth, add);
    }

    // Kubernetes
    try {
      const version = await client.get<{ gitVersion?: string }>('/version', { signal: ctx.signal, timeoutMs: 10_000 });
      add({
        name: 'Kubernetes API server reachable',
        ok: true,
        detail: `${client.connection.server} ${version.gitVersion ?? ''}`.trim(),
      });
    } catch (err) {
      add({
        name: 'Kubernetes API server reachable',
        ok: false,
        detail: message(err),
        fix: `check ${client.connection.source}`,
      });
      return checks;
    }
    const present = async (name: string, path: string, fix: string) => {
      const found = await client.find(path, { signal: ctx.signal }).catch((err: unknown) => err);
      if (found instanceof Error) add({ name, ok: false, detail: message(found), fix });
      else add({ name, ok: found !== undefined, ...(found ? {} : { detail: 'not found', fix }) });
    };
    await present(`namespace ${namespace}`, `/api/v1/namespaces/${namespace}`, setup);
    await present(
      `serviceaccount ${namespace}/${ksa}`,
      `/api/v1/namespaces/${namespace}/serviceaccounts/${ksa}`,
      setup,
    );

    if (identity) {
      const questions: (AccessQuestion & { fix: string })[] = [
        { namespace, verb: 'create', resource: 'serviceaccounts', subresource: 'token', name: ksa, fix: setup },
        // A namespace set up with names grants get on those only: asking for "any" would fail it for nothing.
        ...reads('configmaps', options.configMaps).map((q) => ({ namespace, ...q, fix: setup })),
        ...reads('secrets', options.secrets).map((q) => ({ namespace, ...q, fix: setup })),
        {
          namespace: ISTIO_SYSTEM,
          verb: 'get',
          resource: 'configmaps',
          name: MESH_ENV,
          fix: `${setup} (or krun setup-cluster)`,
        },
      ];
      for (const q of questions) {
        const name = `${identity} may ${describe(q)}`;
        try {
          const ok = await allowed(client, identity, q, ctx.signal);
          add({ name, ok, ...(ok ? {} : { detail: 'denied by RBAC', fix: q.fix }) });
        } catch (err) {
          add({
            name,
            ok: false,
            detail: message(err),
            fix: 'run krun doctor as a user who may create subjectaccessreviews',
          });
        }
      }
    }

    // The mesh
    const meshEnv = await client
      .find<{ data?: Record<string, string> }>(`/api/v1/namespaces/${ISTIO_SYSTEM}/configmaps/${MESH_ENV}`, {
        signal: ctx.signal,
      })
      .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    if (meshEnv instanceof Error || meshEnv === undefined) {
      add({
        name: `configmap ${ISTIO_SYSTEM}/${MESH_ENV}`,
        ok: false,
        detail: meshEnv === undefined ? 'not found' : message(meshEnv),
        fix: 'krun setup-cluster',
      });
    } else {
      const missing = MESH_ENV_KEYS.filter((k) => !meshEnv.data?.[k]);
      add({
        name: `configmap ${ISTIO_SYSTEM}/${MESH_ENV}`,
        ok: missing.length === 0,
        detail:
          missing.length === 0 ? `${Object.keys(meshEnv.data ?? {}).length} keys` : `missing ${missing.join(', ')}`,
        ...(missing.length === 0
          ? {}
          : { fix: `kubectl -n ${ISTIO_SYSTEM} edit configmap ${MESH_ENV} (or krun setup-cluster)` }),
      });
    }
    // Where mesh workloads reach Cloud Run services (what krun register points them at).
    try {
      const gate = pickGateAddress(await readGateFacts(client, ctx.signal));
      add({ name: 'gate address', ok: true, detail: `${gate.address} from ${gate.source}` });
    } catch (err) {
      add({
        name: 'gate address',
        ok: false,
        detail: message(err),
        fix: "krun setup-cluster, then wait for the gate's load balancer (or set IMCON_ADDR in mesh-env)",
      });
    }
    for (const crd of ISTIO_CRDS) {
      await present(
        `customresourcedefinition ${crd}`,
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`,
        'install Istio (istioctl install, or managed Cloud Service Mesh)',
      );
    }
    if (options.service) {
      checkRunServiceName(options.service);
      const { serviceChecks } = await import('./doctor-service.ts');
      const region = options.region ?? (ctx.env.CLOUDSDK_RUN_REGION || undefined);
      const target = { service: options.service, namespace, project, region };
      checks.push(...(await serviceChecks(target, client, auth, ctx)));
    }
    return checks;
  } finally {
    client.close();
  }
}

async function googleChecks(
  project: string,
  identity: string,
  setup: string,
  ctx: KrunContext,
  source: GoogleAuthSource,
  add: (check: Check) => void,
): Promise<void> {
  let auth: GoogleAuth;
  try {
    auth = await source();
    await auth.getAccessToken();
    add({
      name: 'Google credentials',
      ok: true,
      detail: (await callerEmail(auth)) ?? 'application default credentials',
    });
  } catch (err) {
    add({ name: 'Google credentials', ok: false, detail: message(err), fix: 'gcloud auth application-default login' });
    return;
  }
  try {
    const sa = await getServiceAccount(auth, project, identity, ctx.env, ctx.signal);
    add({
      name: `Google service account ${identity}`,
      ok: sa !== undefined && sa.disabled !== true,
      ...(sa === undefined ? { detail: 'not found', fix: setup } : {}),
      ...(sa?.disabled ? { detail: 'disabled', fix: `gcloud iam service-accounts enable ${identity}` } : {}),
    });
  } catch (err) {
    add({ name: `Google service account ${identity}`, ok: false, detail: message(err), fix: setup });
  }
  const name = `${CLUSTER_VIEWER_ROLE} for ${identity} on project ${project}`;
  try {
    const ok = hasMember(
      await getProjectPolicy(auth, project, ctx.env, ctx.signal),
      CLUSTER_VIEWER_ROLE,
      memberOf(identity),
    );
    add({
      name,
      ok,
      ...(ok
        ? {}
        : {
            detail: 'not granted',
            fix: `gcloud projects add-iam-policy-binding ${project} --member serviceAccount:${identity} --role ${CLUSTER_VIEWER_ROLE}`,
          }),
    });
  } catch (err) {
    add({ name, ok: false, detail: message(err), fix: setup });
  }
}

/** `PASS  name (detail)` / `FAIL  name: detail` and an indented fix line. */
export function formatChecks(checks: readonly Check[]): string {
  return checks
    .map((c) =>
      c.ok
        ? `PASS  ${c.name}${c.detail ? ` (${c.detail})` : ''}\n`
        : `FAIL  ${c.name}${c.detail ? `: ${c.detail}` : ''}\n${c.fix ? `      fix: ${c.fix}\n` : ''}`,
    )
    .join('');
}
