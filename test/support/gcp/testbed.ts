// A test file's Google Cloud: one emulator whose access tokens the run's kube-apiserver accepts (as the Google
// email, like GKE), the control plane itself, and a work directory, all cleaned up when the file's tests end.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { ControlPlaneInfo } from '../control-plane/index.ts';
import { controlPlane } from '../control-plane/shared.ts';
import { TestKube } from '../kube.ts';
import { type GcpEmulator, type GcpEmulatorOptions, startGcpEmulator } from './index.ts';

export interface Testbed {
  readonly plane: ControlPlaneInfo;
  readonly kube: TestKube;
  readonly gcp: GcpEmulator;
  readonly work: string;
}

export async function gcpTestbed(name: string, options: Omit<GcpEmulatorOptions, 'accessTokenKey'>): Promise<Testbed> {
  const plane = await controlPlane();
  const gcp = await startGcpEmulator({ ...options, accessTokenKey: plane.gcpAccessTokenKey });
  const work = await mkdtemp(join(tmpdir(), `krun-${name}-`));
  after(async () => {
    await gcp.stop();
    await rm(work, { recursive: true, force: true });
  });
  return { plane, kube: new TestKube(plane.access), gcp, work };
}

/**
 * A namespace with ServiceAccount `default`, run as its Google service account `k8s-<ns>@<project>` (the metadata
 * server's, as on Cloud Run), which may list the project's clusters and create that ServiceAccount's tokens.
 */
export async function gkeWorkloadNamespace({ kube, gcp }: Testbed, prefix: string, projectId: string) {
  const ns = await kube.createNamespace(prefix);
  await kube.createServiceAccount(ns, 'default');
  const email = `k8s-${ns}@${projectId}.iam.gserviceaccount.com`;
  gcp.state.addServiceAccount({ projectId, accountId: `k8s-${ns}` });
  gcp.metadata.serviceAccount = email;
  gcp.state.grant(`projects/${projectId}`, 'roles/container.clusterViewer', email);
  await kube.grant(
    ns,
    'krun',
    [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['default'], verbs: ['create'] }],
    [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: email }],
  );
  return ns;
}
