// A mesh workload for `krun run` tests against the real apiserver, istiod and pilot-agent: a namespace with a
// ServiceAccount `app`, a launcher identity holding just the RBAC `krun run` needs, and the environment that runs
// krun in proxyless mode with its files under a fresh base directory.
import { join } from 'node:path';
import type { ControlPlaneInfo } from '../../support/control-plane/index.ts';
import { freePort } from '../../support/control-plane/ports.ts';
import type { TestKube } from '../../support/kube.ts';
import { launcherWorkload } from '../../support/kubeconfig.ts';
import { launcherCase } from '../../support/launcher-case.ts';

export interface MeshWorkload {
  readonly ns: string;
  /** MESH_BASE_DIR of this workload. */
  readonly dir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export async function meshWorkload(plane: ControlPlaneInfo, kube: TestKube, work: string): Promise<MeshWorkload> {
  const { ns, kubeconfig } = await launcherWorkload(kube, work, 'krun-mesh', 'istio-root');
  const { dir, env } = await launcherCase(work, {
    KUBECONFIG: kubeconfig,
    WORKLOAD_SERVICE_ACCOUNT: 'app',
    KRUN_PILOT_AGENT: plane.fixtures.pilotAgent,
    KRUN_ENVOY: join(work, 'no-envoy'),
    XDS_ADDR: plane.istiod.secureGrpcAddress,
    KRUN_MESH_STATUS_PORT: String(await freePort()),
  });
  return { ns, dir, env };
}
