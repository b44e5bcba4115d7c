// `krun setup-namespace`: everything a namespace needs before `krun run` can act for it, idempotently.
//   Google: the service account k8s-NS@PROJECT.iam.gserviceaccount.com, roles/container.clusterViewer on the project
//           (and roles/run.invoker for named operators), by etag read-modify-write.
//   Kubernetes: the namespace, the workload ServiceAccount, and the launcher's least-privilege RBAC
//           (namespace-objects.ts), by server-side apply.
// Reads come first (a plan), then one confirmation for the IAM changes, then the writes. A dry run on the client
// sends nothing at all; on the server, Kubernetes validates with dryRun=All and Google is only read (its IAM APIs have
// no validate-only mode).
import type { GoogleAuth } from 'google-auth-library';
import type { KrunContext } from '../context.ts';
import { NonInteractiveError } from '../errors.ts';
import {
  createServiceAccount,
  ensureProjectGrants,
  getServiceAccount,
  googleAuth,
  type IamGrant,
  memberOf,
} from '../gcp/iam-admin.ts';
import { apiStatus, type KubeClient, type KubeObject } from '../kube/client.ts';
import { resourceName } from '../output/printer.ts';
import { inquirerPrompter, type Prompter } from '../ui/prompt.ts';
import { runTasks, type Task } from '../ui/tasks.ts';
import { applyObject, type Change, type DryRun } from './apply.ts';
import { required } from './ask.ts';
import { type KubeTarget, kubeClient } from './kube.ts';
import {
  CLUSTER_VIEWER_ROLE,
  checkNamespace,
  googleAccountId,
  googleServiceAccountEmail,
  ISTIO_SYSTEM,
  RUN_INVOKER_ROLE,
} from './names.ts';
import { type NamespaceSpec, namespaceObjects } from './namespace-objects.ts';

export interface SetupNamespaceOptions extends KubeTarget {
  readonly namespace?: string | undefined;
  readonly project?: string | undefined;
  /** The workload's Kubernetes ServiceAccount; default `default`. */
  readonly serviceAccount?: string | undefined;
  readonly configMaps?: readonly string[] | undefined;
  readonly secrets?: readonly string[] | undefined;
  /** Operators (emails or IAM members) to grant roles/run.invoker on the project. */
  readonly invokers?: readonly string[] | undefined;
  readonly dryRun: DryRun;
  /** Make IAM changes without asking. */
  readonly yes: boolean;
}

export interface SetupNamespaceResult {
  readonly namespace: string;
  readonly project: string;
  readonly identity: string;
  /** The Kubernetes objects applied (or that would be), for `-o yaml|json|name`. */
  readonly objects: readonly KubeObject[];
  /** One line per object and IAM change, in order. */
  readonly changes: readonly Change[];
  readonly dryRun: DryRun;
}

/** Seams for tests: the prompter, the Google credentials and the cluster client. */
export interface SetupDeps {
  readonly prompter?: Prompter;
  readonly auth?: () => Promise<GoogleAuth>;
  readonly kube?: () => Promise<KubeClient>;
}

/** The Google-side wants of a namespace (pure). */
export function googleGrants(project: string, identity: string, invokers: readonly string[]): IamGrant[] {
  const resource = `projects/${project}`;
  return [
    { resource, role: CLUSTER_VIEWER_ROLE, member: memberOf(identity) },
    ...[...new Set(invokers.map(memberOf))].sort().map((member) => ({ resource, role: RUN_INVOKER_ROLE, member })),
  ];
}

export function googleAccountName(identity: string): string {
  return `serviceaccount.iam.googleapis.com/${identity}`;
}

export function grantName(grant: IamGrant): string {
  return `${grant.resource} ${grant.role} ${grant.member}`;
}

interface GooglePlan {
  accountExists: boolean;
  missing: IamGrant[];
}

export async function setupNamespace(
  options: SetupNamespaceOptions,
  ctx: KrunContext,
  deps: SetupDeps = {},
): Promise<SetupNamespaceResult> {
  const prompter = deps.prompter ?? inquirerPrompter(ctx);
  const namespace = await required(
    options.namespace,
    { question: 'Namespace', flag: 'the NAMESPACE argument', validate: checkNamespace },
    ctx,
    prompter,
  );
  checkNamespace(namespace);
  googleAccountId(namespace);
  const project = await required(
    options.project ?? (ctx.env.CLOUDSDK_CORE_PROJECT || ctx.env.GOOGLE_CLOUD_PROJECT || undefined),
    { question: 'Google Cloud project', flag: '--project (or KRUN_PROJECT)' },
    ctx,
    prompter,
  );
  const identity = googleServiceAccountEmail(namespace, project);
  const spec: NamespaceSpec = {
    namespace,
    identity,
    serviceAccount: options.serviceAccount ?? 'default',
    ...(options.configMaps?.length ? { configMaps: options.configMaps } : {}),
    ...(options.secrets?.length ? { secrets: options.secrets } : {}),
  };
  const objects = namespaceObjects(spec);
  const grants = googleGrants(project, identity, options.invokers ?? []);
  const result = { namespace, project, identity, objects, dryRun: options.dryRun };

  if (options.dryRun === 'client') {
    // Nothing is read or written: the plan is everything krun would make sure of.
    const changes: Change[] = [
      { name: googleAccountName(identity), verb: 'configured' },
      ...grants.map((g) => ({ name: grantName(g), verb: 'configured' })),
      ...objects.map((o) => ({ name: resourceName(o), verb: 'configured' })),
    ];
    await runTasks(
      changes.map((c) => ({ title: `Planning ${c.name}`, run: async () => `${c.name} configured (dry run)` })),
      ctx,
    );
    return { ...result, changes };
  }

  const mode = options.dryRun === 'server' ? 'server' : 'none';
  const auth = await (deps.auth ?? (() => googleAuth(project)))();
  const plan: GooglePlan = { accountExists: false, missing: [] };
  await runTasks(
    [
      {
        title: `Reading Google service account ${identity}`,
        run: async (signal) => {
          plan.accountExists = (await getServiceAccount(auth, project, identity, ctx.env, signal)) !== undefined;
          return `${googleAccountName(identity)} ${plan.accountExists ? 'exists' : 'not found'}`;
        },
      },
      {
        title: `Reading the IAM policy of project ${project}`,
        run: async (signal) => {
          plan.missing = await ensureProjectGrants(auth, project, grants, ctx.env, { apply: false, signal });
          return `projects/${project} IAM policy read: ${plan.missing.length} of ${grants.length} grants missing`;
        },
      },
    ],
    ctx,
  );

  const googleChanges = [
    ...(plan.accountExists ? [] : [`create Google service account ${identity}`]),
    ...plan.missing.map((g) => `grant ${g.role} on ${g.resource} to ${g.member}`),
  ];
  if (googleChanges.length > 0 && options.dryRun === 'none' && !options.yes) {
    if (!ctx.interactive) {
      throw new NonInteractiveError(
        `setup-namespace would change IAM in project ${project} (${googleChanges.join('; ')}): pass --yes to allow it, or --dry-run to see every change`,
      );
    }
    const ok = await prompter.confirm(`Make these IAM changes?\n  ${googleChanges.join('\n  ')}\n`, false);
    if (!ok) {
      throw new NonInteractiveError('IAM changes declined; nothing was changed', {
        hints: ['--dry-run=client -o yaml to review every change'],
      });
    }
  }

  const client = await (deps.kube ?? (() => kubeClient(options, ctx)))();
  try {
    const changes: Change[] = [];
    const missingNs = new Set<string>();
    const suffix = options.dryRun === 'server' ? ' (server dry run)' : '';
    const record = (change: Change): string => {
      changes.push(change);
      return `${change.name} ${change.verb}${suffix}`;
    };
    const tasks: Task[] = [
      {
        title: `Creating Google service account ${identity}`,
        run: async (signal) => {
          let verb = 'unchanged';
          if (!plan.accountExists) {
            if (options.dryRun === 'none') {
              await createServiceAccount(
                auth,
                project,
                {
                  accountId: googleAccountId(namespace),
                  displayName: `krun workloads in namespace ${namespace}`,
                  description: `Created by krun setup-namespace: the identity of krun run in Kubernetes namespace ${namespace}`,
                },
                ctx.env,
                signal,
              );
            }
            verb = 'created';
          }
          return record({ name: googleAccountName(identity), verb });
        },
      },
      {
        title: `Granting IAM roles on project ${project}`,
        run: async (signal) => {
          // Re-read at write time: the policy may have changed since the plan.
          const granted =
            options.dryRun === 'none'
              ? await ensureProjectGrants(auth, project, grants, ctx.env, { apply: true, signal })
              : plan.missing;
          for (const g of grants) record({ name: grantName(g), verb: granted.includes(g) ? 'granted' : 'unchanged' });
          const n = granted.length;
          return `projects/${project} IAM policy ${n > 0 ? `updated (${n} granted)` : 'unchanged'}${suffix}`;
        },
      },
      ...objects.map((object) => ({
        title: `Applying ${resourceName(object)}`,
        run: async (signal: AbortSignal) => record(await applyKube(client, object, mode, missingNs, signal)),
      })),
    ];
    await runTasks(tasks, ctx);
    return { ...result, changes };
  } finally {
    client.close();
  }
}

/**
 * Applies one object. In a server dry run, objects in a namespace that doesn't exist yet can't be validated (the
 * server would refuse them for the missing namespace), so they're reported as to be created. RBAC for mesh-env needs
 * istio-system: without it (no Istio yet), that step is skipped with a note rather than failing the namespace.
 */
async function applyKube(
  client: KubeClient,
  object: KubeObject,
  dryRun: 'none' | 'server',
  missingNamespaces: Set<string>,
  signal: AbortSignal,
): Promise<Change> {
  const ns = object.metadata.namespace;
  if (ns && missingNamespaces.has(ns)) return { name: resourceName(object), verb: 'created' };
  try {
    const change = await applyObject(client, object, { dryRun, signal });
    if (object.kind === 'Namespace' && change.verb === 'created' && dryRun === 'server') {
      missingNamespaces.add(object.metadata.name);
    }
    return change;
  } catch (err) {
    if (ns === ISTIO_SYSTEM && apiStatus(err) === 404) {
      return { name: resourceName(object), verb: `skipped (no ${ISTIO_SYSTEM} namespace: install Istio first)` };
    }
    throw err;
  }
}
