// What an operator command's TARGET names, turned into the HBONE origin to dial: a Cloud Run service name (resolved
// through the Admin API's services.get to its URL), an `http(s)://` URL, or `host:port` of a workload serving HBONE
// over TLS. Project and region come from the flags, the environment, then the active gcloud configuration.
import type { KrunContext } from '../context.ts';
import { NonInteractiveError, NotFoundError, UsageError } from '../errors.ts';
import { knownProject, projectAndRegion, type TargetOptions } from '../gcp/gcloud-config.ts';
import { type GoogleAuthSource, sharedGoogleAuth } from '../gcp/iam-admin.ts';
import { parseTunnelUrl } from '../hbone/url.ts';

export type { TargetOptions };

export interface ResolvedTarget {
  /** What the user typed. */
  readonly input: string;
  /** `https://host[:port]`: where tunnels go. */
  readonly origin: URL;
  /** The Cloud Run service name, when TARGET was one. */
  readonly service?: { readonly name: string; readonly project: string; readonly region: string };
  /** The name host keys are pinned under (`HostKeyAlias`): the origin's host[:port]. */
  readonly hostAlias: string;
}

export interface TargetDeps {
  /** The command's one GoogleAuth (src/lib/gcp/iam-admin.ts sharedGoogleAuth), also used for its ID tokens. */
  readonly auth?: GoogleAuthSource;
}

/**
 * The one GoogleAuth of an operator command, for both the Admin API (a service name) and the ID tokens of its
 * tunnels, created with the project of --project, the environment or gcloud's configuration.
 */
export function operatorGoogleAuth(options: TargetOptions, ctx: KrunContext): GoogleAuthSource {
  return sharedGoogleAuth(knownProject(ctx.env, options));
}

const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const HOST_PORT = /^(\[[0-9a-f:.]+\]|[^\s/:[\]]+):(\d{1,5})$/i;

const MISSING_TARGET_HINTS = [
  'give TARGET: a Cloud Run service name, an https:// URL or host:port (krun ssh my-service)',
  'or run on a terminal to pick one of the Cloud Run services in the region',
];

/** TARGET as the origin to dial. Without one: on a terminal, a pick from the region's services; otherwise exit 2. */
export async function resolveTarget(
  input: string | undefined,
  options: TargetOptions,
  ctx: KrunContext,
  deps: TargetDeps = {},
): Promise<ResolvedTarget> {
  const made = (typed: string, origin: URL, service?: ResolvedTarget['service']): ResolvedTarget => ({
    input: typed,
    origin,
    hostAlias: origin.host,
    ...(service ? { service } : {}),
  });
  if (input === undefined && !ctx.interactive) {
    throw new NonInteractiveError('missing argument TARGET', { hints: MISSING_TARGET_HINTS });
  }
  if (input !== undefined) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) return made(input, parseTunnelUrl(input).origin);
    if (HOST_PORT.test(input)) return made(input, new URL(`https://${input}`));
    if (!SERVICE_NAME.test(input)) {
      throw new UsageError(`"${input}" is not a Cloud Run service name, an https:// URL or host:port`, {
        hints: ['krun ssh my-service', 'krun ssh https://my-service-abc123-uc.a.run.app', 'krun ssh vm.example:15009'],
      });
    }
  }
  const what = input === undefined ? 'Cloud Run services' : `Cloud Run service ${input}`;
  const { project, region } = await projectAndRegion(options, ctx.env);
  if (!project) {
    throw new UsageError(`no Google Cloud project to find ${what} in`, {
      hints: ['--project PROJECT (or KRUN_PROJECT, PROJECT_ID)', 'gcloud config set project PROJECT'],
    });
  }
  if (!region) {
    throw new UsageError(`no region to find ${what} in`, {
      hints: ['--region REGION (or KRUN_REGION)', 'gcloud config set run/region REGION'],
    });
  }
  const { getRunService, listRunServices } = await import('../gcp/run-admin.ts');
  const auth = await (deps.auth ?? operatorGoogleAuth(options, ctx))();
  let found: { name: string; uri: string };
  if (input === undefined) {
    const services = await listRunServices(auth, project, region, ctx.env, ctx.signal);
    if (services.length === 0) {
      throw new NotFoundError(`no Cloud Run services in region ${region} of project ${project}`, {
        hints: ['--region REGION', '--project PROJECT'],
      });
    }
    const { choose } = await import('../ui/prompt.ts');
    found = await choose(
      ctx,
      `Cloud Run service in ${region} of ${project}`,
      services.map((s) => ({ name: s.name, value: s, description: s.uri })),
    );
  } else {
    found = { name: input, uri: (await getRunService(auth, project, region, input, ctx.env, ctx.signal)).uri };
  }
  ctx.log.debug('resolved Cloud Run service', { service: found.name, url: found.uri });
  return made(found.name, new URL(new URL(found.uri).origin), { name: found.name, project, region });
}
