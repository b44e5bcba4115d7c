// The kube-apiserver's token webhook authenticator for Google access tokens, as GKE has: a loopback HTTPS server
// answering authentication.k8s.io/v1 TokenReviews, which authenticates a valid Google Cloud emulator access token as
// the Google account's email (GKE's username for Google identities). Any emulator started with the same key
// (ControlPlaneInfo.gcpAccessTokenKey) mints tokens this apiserver accepts.
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { newAccessTokenKey, verifyAccessToken } from '../gcp/tokens.ts';
import { createCertificateAuthority } from '../pki.ts';

export interface TokenWebhook {
  /** HMAC key (base64) of the access tokens it accepts. */
  readonly key: string;
  /** kubeconfig-format file for --authentication-token-webhook-config-file. */
  readonly configFile: string;
  close(): Promise<void>;
}

interface TokenReview {
  apiVersion?: string;
  kind?: string;
  spec?: { token?: string; audiences?: string[] };
}

export async function startTokenWebhook(dir: string, key = newAccessTokenKey()): Promise<TokenWebhook> {
  const ca = await createCertificateAuthority('krun test token webhook CA');
  const serving = await ca.issue({ commonName: '127.0.0.1', hosts: ['127.0.0.1'], usage: 'server' });
  const server: Server = createServer({ key: serving.keyPem, cert: serving.chainPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let review: TokenReview = {};
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as TokenReview;
      } catch {}
      const claims = verifyAccessToken(key, review.spec?.token ?? '');
      const status = claims?.email
        ? { authenticated: true, user: { username: claims.email, groups: ['system:authenticated'] } }
        : { authenticated: false };
      const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const configFile = join(dir, 'token-webhook.kubeconfig');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'gcp-token-webhook',
        cluster: {
          server: `https://127.0.0.1:${port}/authenticate`,
          'certificate-authority-data': Buffer.from(ca.certPem).toString('base64'),
        },
      },
    ],
    users: [{ name: 'kube-apiserver', user: {} }],
    contexts: [{ name: 'webhook', context: { cluster: 'gcp-token-webhook', user: 'kube-apiserver' } }],
    'current-context': 'webhook',
  };
  writeFileSync(configFile, stringify(config), { mode: 0o600 });
  return {
    key,
    configFile,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
