// The real control plane the tests run against: etcd, kube-apiserver and istiod, built from Go modules and started
// on 127.0.0.1 random ports. One instance serves a whole `npm test` run (started by the global setup); tests isolate
// themselves with unique namespaces.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureFixtures, type Fixtures } from '../fixtures/build.ts';
import { type KubeAccess, TestKube } from '../kube.ts';
import { writeKubeconfig } from '../kubeconfig.ts';
import { startApiServer } from './apiserver.ts';
import { startEtcd } from './etcd.ts';
import { applyIstioCrds, ISTIO_NAMESPACE, startIstiod } from './istio.ts';
import type { ManagedProcess } from './process.ts';
import { startTokenWebhook, type TokenWebhook } from './token-webhook.ts';

/** What a test needs to reach the control plane; serialisable, so the global setup can hand it to test files. */
export interface ControlPlaneInfo {
  readonly dir: string;
  readonly fixtures: Fixtures;
  readonly access: KubeAccess;
  /** An admin (system:masters) kubeconfig. */
  readonly kubeconfig: string;
  readonly istiod: { readonly grpcAddress: string; readonly secureGrpcAddress: string; readonly httpUrl: string };
  /** Seconds from start to ready, for the record. */
  readonly startupSeconds: number;
  /** HMAC key of Google Cloud emulator access tokens the apiserver accepts (startGcpEmulator's accessTokenKey). */
  readonly gcpAccessTokenKey: string;
}

export interface ControlPlane extends ControlPlaneInfo {
  stop(): Promise<void>;
}

export async function startControlPlane(log: (line: string) => void = () => {}): Promise<ControlPlane> {
  const fixtures = await ensureFixtures(log);
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'krun-control-plane-'));
  const processes: ManagedProcess[] = [];
  let webhook: TokenWebhook | undefined;
  const stop = async (): Promise<void> => {
    for (const p of processes.reverse()) await p.stop();
    await webhook?.close();
    if (!process.env.KRUN_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const etcd = await startEtcd(fixtures.etcd, dir);
    processes.push(etcd.process);
    webhook = await startTokenWebhook(dir);
    const api = await startApiServer(fixtures.kubeApiserver, dir, etcd.url, webhook.configFile);
    processes.push(api.process);
    const kube = new TestKube(api.access);
    const kubeconfig = writeKubeconfig(join(dir, 'admin.kubeconfig'), api.access);
    await kube.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ISTIO_NAMESPACE } });
    await applyIstioCrds(kube, fixtures.istioCrds);
    const istiod = await startIstiod(fixtures.pilotDiscovery, dir, kubeconfig, kube);
    processes.push(istiod.process);
    const startupSeconds = (Date.now() - started) / 1000;
    log(`control plane ready in ${startupSeconds.toFixed(1)} s (logs in ${dir})`);
    return {
      dir,
      fixtures,
      access: api.access,
      kubeconfig,
      istiod: { grpcAddress: istiod.grpcAddress, secureGrpcAddress: istiod.secureGrpcAddress, httpUrl: istiod.httpUrl },
      startupSeconds,
      gcpAccessTokenKey: webhook.key,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
