// `krun kubeconfig`: a kubeconfig entry for a GKE cluster, found by the same selection `krun run` uses. Like
// gcloud, it uses the gke-gcloud-auth-plugin exec credential when the plugin is installed (refreshing tokens for
// as long as the user's credentials last), and otherwise a static access token that expires within the hour.
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { KrunContext } from '../context.ts';
import { KrunError } from '../errors.ts';
import type { KubeconfigEntry } from '../kube/kubeconfig-file.ts';
import { discoverGke, type GkeSettings } from './discover.ts';

export const AUTH_PLUGIN = 'gke-gcloud-auth-plugin';

export async function findOnPath(command: string, path: string | undefined): Promise<string | undefined> {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, command);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

export interface CredentialsResult {
  readonly entry: KubeconfigEntry;
  /** True when the entry carries a static token (it expires; the plugin was not found). */
  readonly staticToken: boolean;
}

export async function gkeCredentials(settings: GkeSettings, ctx: KrunContext): Promise<CredentialsResult> {
  const found = await discoverGke(settings, ctx.env, ctx.log);
  if (!found) {
    throw new KrunError('no Google Cloud project to look for clusters in', {
      hints: ['krun kubeconfig --project PROJECT', 'gcloud config set project PROJECT'],
    });
  }
  const { connection, contextName: name } = found;
  const base = { name, server: connection.server, ca: connection.ca };
  if (await findOnPath(AUTH_PLUGIN, ctx.env.PATH)) {
    const exec = {
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      command: AUTH_PLUGIN,
      installHint:
        'Install gke-gcloud-auth-plugin for use with kubectl (gcloud components install gke-gcloud-auth-plugin)',
      provideClusterInfo: true,
      interactiveMode: 'IfAvailable',
    };
    return { entry: { ...base, user: { exec } }, staticToken: false };
  }
  const token = await connection.tokenProvider?.();
  if (!token) throw new KrunError('no access token from the Google credentials');
  return { entry: { ...base, user: { token } }, staticToken: true };
}
