// `krun setup-cluster`: the cluster side, idempotently. Reads first (the project number from Resource Manager, the
// mesh roots from istio-system/istio-ca-root-cert, the gate's load-balancer addresses once it has them), then
// applies cluster-objects.ts by server-side apply. mesh-env gets the keys krun knows; keys written by others (the
// gate, an operator) are left alone, because server-side apply only owns what krun sent. The gate's addresses appear
// once its load balancers have them: re-run setup-cluster then (the gate of issue 11 also keeps them reconciled).
import type { GoogleAuth } from 'google-auth-library';
import type { KrunContext } from '../context.ts';
import { NotFoundError } from '../errors.ts';
import { googleAuth } from '../gcp/iam-admin.ts';
import { getProjectNumber } from '../gcp/run-admin.ts';
import type { KubeClient, KubeObject } from '../kube/client.ts';
import { resourceName } from '../output/printer.ts';
import { inquirerPrompter, type Prompter } from '../ui/prompt.ts';
import { runTasks, type Task } from '../ui/tasks.ts';
import { applyObject, type Change, changeLine, type DryRun } from './apply.ts';
import { required } from './ask.ts';
import { clusterObjects } from './cluster-objects.ts';
import { readGateFacts } from './gate-address.ts';
import { type KubeTarget, kubeClient } from './kube.ts';
import { GATE_PORT, ISTIO_SYSTEM } from './names.ts';

/** The image the gate runs when --image isn't given. */
export const DEFAULT_GATE_IMAGE = 'krun:latest';

export interface SetupClusterOptions extends KubeTarget {
  readonly project?: string | undefined;
  readonly projectNumber?: string | undefined;
  readonly clusterName?: string | undefined;
  readonly clusterLocation?: string | undefined;
  readonly image?: string | undefined;
  readonly gateArgs?: readonly string[] | undefined;
  readonly gatePort?: number | undefined;
  readonly dryRun: DryRun;
}

export interface SetupClusterResult {
  readonly objects: readonly KubeObject[];
  readonly changes: readonly Change[];
  readonly dryRun: DryRun;
}

export interface SetupClusterDeps {
  readonly prompter?: Prompter;
  readonly auth?: () => Promise<GoogleAuth>;
  readonly kube?: () => Promise<KubeClient>;
}

export async function setupCluster(
  options: SetupClusterOptions,
  ctx: KrunContext,
  deps: SetupClusterDeps = {},
): Promise<SetupClusterResult> {
  const prompter = deps.prompter ?? inquirerPrompter(ctx);
  const project = await required(
    options.project ?? (ctx.env.CLOUDSDK_CORE_PROJECT || ctx.env.GOOGLE_CLOUD_PROJECT || undefined),
    { question: 'Google Cloud project', flag: '--project (or KRUN_PROJECT)' },
    ctx,
    prompter,
  );
  const meshEnv: Record<string, string> = {
    PROJECT_ID: project,
    ...(options.projectNumber ? { PROJECT_NUMBER: options.projectNumber } : {}),
    ...(options.clusterName ? { CLUSTER_NAME: options.clusterName } : {}),
    ...(options.clusterLocation ? { CLUSTER_LOCATION: options.clusterLocation } : {}),
  };
  const build = () =>
    clusterObjects({
      image: options.image ?? DEFAULT_GATE_IMAGE,
      gateArgs: options.gateArgs ?? [],
      gatePort: options.gatePort ?? GATE_PORT,
      meshEnv,
    });
  const changes: Change[] = [];
  const record = (change: Change) => {
    changes.push(change);
    return changeLine(change, options.dryRun);
  };

  if (options.dryRun === 'client') {
    const objects = await build();
    await runTasks(
      objects.map((o) => ({
        title: `Planning ${resourceName(o)}`,
        run: async () => record({ name: resourceName(o), verb: 'configured' }),
      })),
      ctx,
    );
    return { objects, changes, dryRun: options.dryRun };
  }

  const client = await (deps.kube ?? (() => kubeClient(options, ctx)))();
  try {
    const reads: Task[] = [
      {
        title: `Reading namespace ${ISTIO_SYSTEM}`,
        run: async (signal) => {
          if (!(await client.find(`/api/v1/namespaces/${ISTIO_SYSTEM}`, { signal }))) {
            throw new NotFoundError(`there is no ${ISTIO_SYSTEM} namespace: install Istio first`, {
              hints: ['istioctl install, or enable Cloud Service Mesh on the cluster'],
            });
          }
          return `namespace/${ISTIO_SYSTEM} exists`;
        },
      },
    ];
    if (!options.projectNumber) {
      const auth = await (deps.auth ?? (() => googleAuth(project)))();
      reads.push({
        title: `Reading the number of project ${project}`,
        run: async (signal) => {
          meshEnv.PROJECT_NUMBER = await getProjectNumber(auth, project, ctx.env, signal);
          return `projects/${project} is number ${meshEnv.PROJECT_NUMBER}`;
        },
      });
    }
    reads.push(
      {
        title: 'Reading the mesh root certificate',
        run: async (signal) => {
          const roots = await client.find<{ data?: Record<string, string> }>(
            `/api/v1/namespaces/${ISTIO_SYSTEM}/configmaps/istio-ca-root-cert`,
            { signal },
          );
          const pem = roots?.data?.['root-cert.pem'];
          if (pem) meshEnv.CAROOT_ISTIOD = pem;
          return pem
            ? `configmap/istio-ca-root-cert root-cert.pem read`
            : `configmap/istio-ca-root-cert not found: CAROOT_ISTIOD left out`;
        },
      },
      {
        title: "Reading the gate's addresses",
        run: async (signal) => {
          const facts = await readGateFacts(client, signal);
          if (facts.external) meshEnv.MCON_ADDR = facts.external;
          if (facts.internal) meshEnv.IMCON_ADDR = facts.internal;
          const known = [
            facts.internal ? `IMCON_ADDR ${facts.internal}` : '',
            facts.external ? `MCON_ADDR ${facts.external}` : '',
          ].filter(Boolean);
          return known.length > 0 ? `gate addresses: ${known.join(', ')}` : 'gate addresses not known yet';
        },
      },
    );
    await runTasks(reads, ctx);

    const objects = await build();
    const mode = options.dryRun === 'server' ? 'server' : 'none';
    await runTasks(
      objects.map((object) => ({
        title: `Applying ${resourceName(object)}`,
        run: async (signal: AbortSignal) => record(await applyObject(client, object, { dryRun: mode, signal })),
      })),
      ctx,
    );
    return { objects, changes, dryRun: options.dryRun };
  } finally {
    client.close();
  }
}
