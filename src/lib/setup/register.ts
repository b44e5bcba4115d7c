// `krun register SERVICE`: the Kubernetes objects that let mesh workloads call a Cloud Run service through the gate
// (register-objects.ts), with the service's URL from the Cloud Run Admin API and the gate's address from the cluster.
// Every object carries `krun.dev/registration: SERVICE`: a re-run prunes what an older registration left (a URL that
// changed renames the ServiceEntry), and `--unregister` deletes exactly what carries the label, nothing else.
import type { GoogleAuth } from 'google-auth-library';
import type { KrunContext } from '../context.ts';
import { KrunError } from '../errors.ts';
import { googleAuth } from '../gcp/iam-admin.ts';
import { getRunService } from '../gcp/run-admin.ts';
import { collectionPath, KubeClient, type KubeObject, objectPath } from '../kube/client.ts';
import type { KubeConnection } from '../kube/kubeconfig.ts';
import { resourceName } from '../output/printer.ts';
import { inquirerPrompter, type Prompter } from '../ui/prompt.ts';
import { runTasks, type Task } from '../ui/tasks.ts';
import { applyObject, type Change, changeLine, type DryRun } from './apply.ts';
import { required } from './ask.ts';
import { pickGateAddress, readGateFacts } from './gate-address.ts';
import { type KubeTarget, kubeConnection } from './kube.ts';
import { checkNamespace, checkRunServiceName, GATE_PORT, REGISTRATION_LABEL } from './names.ts';
import {
  REGISTRATION_KINDS,
  type RegistrationSpec,
  registrationObjects,
  registrationSelector,
} from './register-objects.ts';

export interface RegisterOptions extends KubeTarget {
  readonly service?: string | undefined;
  /** Where the objects go; default: the kubeconfig context's namespace, else `default`. */
  readonly namespace?: string | undefined;
  readonly project?: string | undefined;
  readonly region?: string | undefined;
  /** The Cloud Run URL, instead of asking the Admin API. */
  readonly url?: string | undefined;
  /** The gate's address, instead of reading it from the cluster. */
  readonly gateAddress?: string | undefined;
  readonly gatePort?: number | undefined;
  readonly serviceAccount?: string | undefined;
  readonly unregister: boolean;
  readonly dryRun: DryRun;
}

export interface RegisterResult {
  readonly service: string;
  readonly namespace: string;
  /** The objects applied (or deleted, with --unregister), for `-o yaml|json|name`. */
  readonly objects: readonly KubeObject[];
  readonly changes: readonly Change[];
  readonly dryRun: DryRun;
}

export interface RegisterDeps {
  readonly prompter?: Prompter;
  readonly auth?: () => Promise<GoogleAuth>;
  readonly kube?: () => Promise<KubeClient>;
}

/** The objects of a registration that exist now, with their kind (list items have none). */
export async function registeredObjects(
  client: KubeClient,
  namespace: string,
  service: string,
  signal?: AbortSignal,
): Promise<KubeObject[]> {
  const found: KubeObject[] = [];
  for (const { apiVersion, kind } of REGISTRATION_KINDS) {
    const items = await client.list<KubeObject>(
      collectionPath(apiVersion, kind, namespace),
      registrationSelector(service),
      signal ? { signal } : {},
    );
    for (const item of items) found.push({ ...item, apiVersion, kind });
  }
  return found;
}

/**
 * Refuses names someone else holds: server-side apply would take over a Service the user made (or another
 * registration's object), and `--unregister` would then delete it.
 */
async function checkNamesFree(
  client: KubeClient,
  objects: readonly KubeObject[],
  service: string,
  signal: AbortSignal,
): Promise<string> {
  const taken: string[] = [];
  for (const object of objects) {
    const live = await client.find<KubeObject>(objectPath(object), { signal });
    if (live && live.metadata.labels?.[REGISTRATION_LABEL] !== service) taken.push(resourceName(object));
  }
  if (taken.length === 0) return `no other owner of ${objects.length} names`;
  const ns = objects[0]?.metadata.namespace ?? '';
  throw new KrunError(
    `${taken.join(', ')} in namespace ${ns} already exist and are not krun's registration of ${service}: registering would take them over, and --unregister would delete them`,
    {
      hints: [
        `kubectl -n ${ns} get ${taken.join(' ')} -o yaml   # whose they are`,
        `delete or rename them, then run krun register ${service} again (or register into another namespace with -n)`,
      ],
    },
  );
}

async function remove(client: KubeClient, object: KubeObject, dryRun: DryRun, signal: AbortSignal): Promise<Change> {
  if (dryRun !== 'client') await client.delete(objectPath(object), { signal, dryRun: dryRun === 'server' });
  return { name: resourceName(object), verb: 'deleted' };
}

export async function register(
  options: RegisterOptions,
  ctx: KrunContext,
  deps: RegisterDeps = {},
): Promise<RegisterResult> {
  const prompter = deps.prompter ?? inquirerPrompter(ctx);
  const service = await required(
    options.service,
    { question: 'Cloud Run service', flag: 'the SERVICE argument', validate: checkRunServiceName },
    ctx,
    prompter,
  );
  checkRunServiceName(service);
  const needsCluster = options.unregister || options.dryRun !== 'client' || !options.gateAddress;
  // A client dry run with the gate address given needs no cluster: the kubeconfig only names the namespace.
  const connection =
    deps.kube || (!needsCluster && options.namespace)
      ? undefined
      : await kubeConnection(options, ctx).catch((err: unknown) => (needsCluster ? Promise.reject(err) : undefined));
  let client: KubeClient | undefined;
  try {
    if (needsCluster) client = deps.kube ? await deps.kube() : new KubeClient(connection as KubeConnection);
    const ns = options.namespace ?? connection?.namespace ?? client?.connection.namespace ?? 'default';
    checkNamespace(ns);
    const result = { service, namespace: ns, dryRun: options.dryRun };
    const changes: Change[] = [];
    const record = (change: Change) => {
      changes.push(change);
      return changeLine(change, options.dryRun);
    };

    if (options.unregister) {
      const kube = client as KubeClient;
      const found: KubeObject[] = [];
      await runTasks(
        [
          {
            title: `Finding the registration of ${service} in namespace ${ns}`,
            run: async (signal) => {
              found.push(...(await registeredObjects(kube, ns, service, signal)));
              return found.length > 0
                ? `${found.length} objects registered as ${service} in namespace ${ns}`
                : `nothing registered as ${service} in namespace ${ns}`;
            },
          },
        ],
        ctx,
      );
      await runTasks(
        found.map((object) => ({
          title: `Deleting ${resourceName(object)}`,
          run: async (signal: AbortSignal) => record(await remove(kube, object, options.dryRun, signal)),
        })),
        ctx,
      );
      return { ...result, objects: found, changes };
    }

    const lookups: Task[] = [];
    let url = options.url;
    if (!url) {
      const project = await required(
        options.project ?? (ctx.env.CLOUDSDK_CORE_PROJECT || ctx.env.GOOGLE_CLOUD_PROJECT || undefined),
        { question: 'Google Cloud project', flag: '--project (or KRUN_PROJECT)' },
        ctx,
        prompter,
      );
      const region = await required(
        options.region ?? (ctx.env.CLOUDSDK_RUN_REGION || undefined),
        { question: 'Cloud Run region', flag: '--region (or KRUN_REGION)' },
        ctx,
        prompter,
      );
      const auth = await (deps.auth ?? (() => googleAuth(project)))();
      lookups.push({
        title: `Looking up Cloud Run service ${service} in ${region}`,
        run: async (signal) => {
          const found = await getRunService(auth, project, region, service, ctx.env, signal);
          url = found.uri;
          return `run.googleapis.com/${found.name} ${url}`;
        },
      });
    }
    let gateAddress = options.gateAddress;
    if (!gateAddress) {
      lookups.push({
        title: 'Reading the gate address',
        run: async (signal) => {
          const picked = pickGateAddress(await readGateFacts(client as KubeClient, signal));
          gateAddress = picked.address;
          return `gate address ${picked.address} (from ${picked.source})`;
        },
      });
    }
    await runTasks(lookups, ctx);

    const spec: RegistrationSpec = {
      service,
      namespace: ns,
      url: url as string,
      gateAddress: gateAddress as string,
      gatePort: options.gatePort ?? GATE_PORT,
      serviceAccount: options.serviceAccount ?? 'default',
    };
    const objects = registrationObjects(spec);
    if (options.dryRun === 'client') {
      await runTasks(
        objects.map((o) => ({
          title: `Planning ${resourceName(o)}`,
          run: async () => record({ name: resourceName(o), verb: 'configured' }),
        })),
        ctx,
      );
      return { ...result, objects, changes };
    }
    const kube = client as KubeClient;
    const mode = options.dryRun === 'server' ? 'server' : 'none';
    const wanted = new Set(objects.map((o) => objectPath(o)));
    const stale: KubeObject[] = [];
    await runTasks(
      [
        {
          title: 'Checking that no one else owns these names',
          run: (signal: AbortSignal) => checkNamesFree(kube, objects, service, signal),
        },
        ...objects.map((object) => ({
          title: `Applying ${resourceName(object)}`,
          run: async (signal: AbortSignal) => record(await applyObject(kube, object, { dryRun: mode, signal })),
        })),
        {
          title: `Finding objects an earlier registration of ${service} left`,
          run: async (signal: AbortSignal) => {
            const found = await registeredObjects(kube, ns, service, signal);
            stale.push(...found.filter((o) => !wanted.has(objectPath(o))));
            return `${stale.length} left from an earlier registration`;
          },
        },
      ],
      ctx,
    );
    await runTasks(
      stale.map((object) => ({
        title: `Deleting ${resourceName(object)}`,
        run: async (signal: AbortSignal) => record(await remove(kube, object, options.dryRun, signal)),
      })),
      ctx,
    );
    return { ...result, objects, changes };
  } finally {
    client?.close();
  }
}
