// What an operator command's TARGET names, turned into the HBONE origin to dial: a Cloud Run service name (resolved
// through the Admin API's services.get to its URL), an `http(s)://` URL, or `host:port` of a workload serving HBONE
// over TLS. Project and region come from the flags, the environment, then the active gcloud configuration.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { GoogleAuth } from 'google-auth-library';
import type { Env, KrunContext } from '../context.ts';
import { NonInteractiveError, NotFoundError, UsageError } from '../errors.ts';
import { parseTunnelUrl } from '../hbone/url.ts';

export interface TargetOptions {
  readonly project?: string | undefined;
  readonly region?: string | undefined;
}

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
  readonly auth?: () => Promise<GoogleAuth>;
}

const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const HOST_PORT = /^(\[[0-9a-f:.]+\]|[^\s/:[\]]+):(\d{1,5})$/i;

const first = (...values: (string | undefined)[]) => values.find((v) => v !== undefined && v !== '');

/** gcloud's active configuration: `[core] project` and `[run] region`, when there is one. */
export async function gcloudConfig(env: Env): Promise<{ project?: string; region?: string }> {
  const dir = env.CLOUDSDK_CONFIG || join(env.HOME || homedir(), '.config', 'gcloud');
  try {
    const active =
      env.CLOUDSDK_ACTIVE_CONFIG_NAME || (await readFile(join(dir, 'active_config'), 'utf8').catch(() => 'default'));
    const text = await readFile(join(dir, 'configurations', `config_${active.trim()}`), 'utf8');
    const out: { project?: string; region?: string } = {};
    let section = '';
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      const header = /^\[(.+)\]$/.exec(line);
      if (header) section = header[1] ?? '';
      const kv = /^([\w-]+)\s*=\s*(.*)$/.exec(line);
      if (!kv) continue;
      if (section === 'core' && kv[1] === 'project') out.project = kv[2];
      if (section === 'run' && kv[1] === 'region') out.region = kv[2];
    }
    return out;
  } catch {
    return {};
  }
}

/** The project and region for a service name: flags, env, then the gcloud configuration. */
export async function projectAndRegion(
  options: TargetOptions,
  env: Env,
): Promise<{ project: string | undefined; region: string | undefined }> {
  let project = first(options.project, env.PROJECT_ID, env.CLOUDSDK_CORE_PROJECT, env.GOOGLE_CLOUD_PROJECT);
  let region = first(options.region, env.CLOUDSDK_RUN_REGION);
  if (!project || !region) {
    const gcloud = await gcloudConfig(env);
    project ??= gcloud.project;
    region ??= gcloud.region;
  }
  return { project, region };
}

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
  const auth = await (deps.auth ?? (await import('../gcp/iam-admin.ts')).googleAuth)();
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
