import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type KubeAccess, TestKube } from '../kube.ts';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess } from './process.ts';
import { waitFor } from './wait.ts';

export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface ApiServer {
  readonly access: KubeAccess;
  readonly process: ManagedProcess;
}

/**
 * kube-apiserver on 127.0.0.1 with what krun needs from a real cluster: RBAC authorization, ServiceAccount token
 * issuing (TokenRequest) and verification (TokenReview), and a static system:masters token for the test.
 * The serving certificate is the apiserver's own self-signed one (written to --cert-dir), trusted by the tests.
 */
export async function startApiServer(
  binary: string,
  dir: string,
  etcdUrl: string,
  /** kubeconfig-format file of a TokenReview webhook (GKE-style Google token authentication); optional. */
  tokenWebhookConfig?: string,
): Promise<ApiServer> {
  const pki = join(dir, 'pki');
  mkdirSync(pki, { recursive: true, mode: 0o700 });
  const saKey = join(pki, 'service-account.key');
  const saPub = join(pki, 'service-account.pub');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(saKey, privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
  writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
  const token = randomBytes(24).toString('hex');
  // token,user,uid,"group1,group2"
  writeFileSync(join(pki, 'tokens.csv'), `${token},krun-test-admin,krun-test-admin,"system:masters"\n`, {
    mode: 0o600,
  });
  const port = await freePort();
  const proc = startProcess('kube-apiserver', binary, {
    logDir: dir,
    args: [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${pki}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-signing-key-file=${saKey}`,
      `--service-account-key-file=${saPub}`,
      // Pods are never scheduled here; the ServiceAccount admission plugin would wait for a default SA.
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      ...(tokenWebhookConfig
        ? [
            `--authentication-token-webhook-config-file=${tokenWebhookConfig}`,
            '--authentication-token-webhook-version=v1',
          ]
        : []),
      '--profiling=false',
      '--v=1',
    ],
  });
  const server = `https://127.0.0.1:${port}`;
  const ca = await waitFor(
    'kube-apiserver serving certificate',
    async () => {
      try {
        return readFileSync(join(pki, 'apiserver.crt'), 'utf8');
      } catch {
        return undefined;
      }
    },
    { process: proc },
  );
  const access: KubeAccess = { server, token, ca };
  const kube = new TestKube(access);
  await waitFor(
    'kube-apiserver /readyz',
    async () => {
      await kube.request('GET', '/readyz');
      return true;
    },
    {
      process: proc,
      timeoutMs: 120_000,
    },
  );
  // The bootstrap controller creates `default` after /readyz on some versions; wait as k8s's own test server does.
  await waitFor('namespace default', () => kube.get('/api/v1/namespaces/default'), { process: proc });
  return { access, process: proc };
}
