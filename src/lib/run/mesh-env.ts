// istio-system/mesh-env: the mesh's environment contract, written by the cluster side (krun setup-cluster or the
// gate) and read by every workload. Absent is fine (an empty map); unreadable is worth a warning, not a failure.
import type { KubeClient } from '../kube/client.ts';
import { apiStatus } from '../kube/client.ts';
import type { Logger } from '../log/logger.ts';
import { MESH_ENV_NAME, MESH_ENV_NAMESPACE } from './settings.ts';

export async function loadMeshEnv(
  client: KubeClient,
  log: Logger,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const path = `/api/v1/namespaces/${MESH_ENV_NAMESPACE}/configmaps/${MESH_ENV_NAME}`;
  try {
    const cm = await client.get<{ data?: Record<string, string> }>(path, signal ? { signal } : {});
    log.debug('loaded mesh-env', { keys: Object.keys(cm.data ?? {}).length });
    return cm.data ?? {};
  } catch (err) {
    const status = apiStatus(err);
    if (status === 404) {
      log.debug(`no ${MESH_ENV_NAMESPACE}/${MESH_ENV_NAME} ConfigMap; using the environment only`);
      return {};
    }
    if (status === 403) {
      log.warn(`can't read ${MESH_ENV_NAMESPACE}/${MESH_ENV_NAME}; using the environment only`, {
        fix: `grant "get configmaps/${MESH_ENV_NAME}" in ${MESH_ENV_NAMESPACE} (krun setup-cluster does this)`,
      });
      return {};
    }
    throw err;
  }
}
