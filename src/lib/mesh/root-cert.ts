// The istiod root pilot-agent trusts for its xDS and CA connections: ConfigMap istio-ca-root-cert in the workload
// namespace (istiod keeps it current), else CAROOT_ISTIOD from the environment or mesh-env (the gate keeps that in
// step with the ConfigMap). Read at start and again by the refresh loop, so a rotated root reaches a long-running
// workload (the original's "refresh mesh-env for CA rotation" TODO); the file is rewritten atomically, only when it
// changed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../context.ts';
import { writeFileAtomic } from '../fs/atomic-file.ts';
import { apiStatus, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../log/logger.ts';
import type { Value } from '../run/config.ts';
import { loadMeshEnv } from '../run/mesh-env.ts';
import { chooseRootCert, MESH_PATHS, type RootCert } from './injector.ts';

export interface RootSource {
  readonly client: KubeClient;
  readonly namespace: string;
  /** CAROOT_ISTIOD as resolved at start; one from mesh-env is re-read from mesh-env. */
  readonly setting: Value<string | undefined>;
  readonly log: Logger;
}

/** The istiod root now; `reread` fetches mesh-env again when that is where the setting came from. */
export async function readIstiodRoot(
  s: RootSource,
  reread: boolean,
  signal?: AbortSignal,
): Promise<RootCert | undefined> {
  let configMap: string | undefined;
  try {
    const cm = await s.client.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${s.namespace}/configmaps/istio-ca-root-cert`,
      signal ? { signal } : {},
    );
    configMap = cm.data?.['root-cert.pem'];
  } catch (err) {
    const status = apiStatus(err);
    if (status !== 404 && status !== 403) throw err;
    s.log.debug(`can't read ConfigMap istio-ca-root-cert (${status})`);
  }
  let setting = s.setting;
  if (reread && setting.source.startsWith('mesh-env ')) {
    setting = { value: (await loadMeshEnv(s.client, s.log, signal)).CAROOT_ISTIOD, source: setting.source };
  }
  return chooseRootCert(configMap, setting.value ? setting : { value: undefined, source: 'unset' });
}

/** Writes the root (0644: a public certificate) unless the file already holds it; true when it was written. */
export async function writeIstiodRoot(baseDir: string, root: RootCert): Promise<boolean> {
  const path = join(baseDir, MESH_PATHS.rootCert);
  if ((await readFile(path, 'utf8').catch(() => undefined)) === root.pem) return false;
  await writeFileAtomic(path, root.pem, 0o644);
  return true;
}

/** The refresh loop's task: re-read the root, rewrite the file if it changed; runs again after intervalMs. */
export function istiodRootRefresh(
  s: RootSource,
  baseDir: string,
  intervalMs: number,
  clock: Clock,
  signal: AbortSignal,
): () => Promise<number> {
  return async () => {
    const root = await readIstiodRoot(s, true, signal);
    if (!root) s.log.warn('the istiod root certificate is gone; keeping the last one', { namespace: s.namespace });
    else if (await writeIstiodRoot(baseDir, root)) {
      s.log.info('the istiod root certificate changed; rewrote it', {
        source: root.source,
        path: join(baseDir, MESH_PATHS.rootCert),
      });
    }
    return clock.now().getTime() + intervalMs;
  };
}
