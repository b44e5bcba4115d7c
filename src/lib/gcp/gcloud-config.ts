// gcloud's view of where an operator works: the project and Cloud Run region from the flags, the environment, then
// the active gcloud configuration (read from its file: `gcloud config` itself takes half a second to start).
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../context.ts';

export interface TargetOptions {
  readonly project?: string | undefined;
  readonly region?: string | undefined;
}

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

/** The project from the flags, the environment or gcloud's configuration, looked up when first asked for. */
export function knownProject(env: Env, options: TargetOptions = {}): () => Promise<string | undefined> {
  return async () => (await projectAndRegion(options, env)).project;
}
