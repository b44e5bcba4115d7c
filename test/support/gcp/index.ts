// A local Google Cloud for the tests: metadata server, IAM, IAM Credentials, Resource Manager, GKE, GKE Hub, STS,
// Certificate Authority Service,
// the Connect Gateway (HTTPS), Cloud Run Admin v2, Google's OAuth 2.0 token endpoint and certificates, and the Cloud Run front end, each on its own
// 127.0.0.1 port, sharing one in-memory state.
// Clients reach it through the official libraries with only endpoints changed (see clientOptions/rootUrl/env).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCertificateAuthority, writePem } from '../pki.ts';
import { connectGatewayHandler } from './connect-gateway.ts';
import { type FrontEnd, startFrontEnd } from './front-end.ts';
import { containerRoutes, gkeHubRoutes, stsHandler } from './gke.ts';
import { type ApiServer, route, startApiServer } from './http.ts';
import { iamCredentialsRoutes, iamRoutes, resourceManagerRoutes } from './iam.ts';
import { installLoopbackDns, OAUTH2_PORT_ENV, RUN_APP_PORT_ENV } from './loopback-dns.ts';
import { type MetadataConfig, metadataHandler } from './metadata.ts';
import { tokenRoute } from './oauth2.ts';
import { privatecaRoutes } from './privateca.ts';
import { runRoutes } from './run.ts';
import { GcpState } from './state.ts';
import { newAccessTokenKey, TokenIssuer } from './tokens.ts';

export { GcpState } from './state.ts';
export { TokenIssuer } from './tokens.ts';

export type EndpointName =
  | 'iam'
  | 'iamcredentials'
  | 'cloudresourcemanager'
  | 'container'
  | 'gkehub'
  | 'sts'
  | 'run'
  | 'oauth2'
  | 'connectgateway'
  | 'privateca';

export interface GcpEmulatorOptions {
  readonly projectId?: string;
  readonly projectNumber?: string;
  readonly region?: string;
  readonly zone?: string;
  /** The metadata server's default service account (created in the project). Default: the compute default SA. */
  readonly serviceAccount?: string;
  /** HMAC key (base64) for access tokens; pass the control plane's so its apiserver accepts them. */
  readonly accessTokenKey?: string;
  /** Where the front-end CA file goes; a new temporary directory by default (removed by stop()). */
  readonly dir?: string;
}

export interface GcpEmulator {
  /** `127.0.0.1:<port>`, for GCE_METADATA_HOST. */
  readonly metadataHost: string;
  /** `http://127.0.0.1:<port>` of each API. */
  readonly endpoints: Readonly<Record<EndpointName, string>>;
  readonly frontEnd: FrontEnd & { readonly caFile: string; readonly caPem: string };
  readonly state: GcpState;
  /** The metadata server's answers; change them freely. */
  readonly metadata: MetadataConfig;
  readonly issuer: {
    readonly iss: string;
    readonly pemCertsUrl: string;
    readonly jwksUri: string;
    readonly tokens: TokenIssuer;
  };
  readonly accessTokenKey: string;
  /** Milliseconds from call to ready. */
  readonly startupMs: number;
  /** Options for a google-gax client (`@google-cloud/*`): REST transport to this endpoint. */
  clientOptions(name: EndpointName): { apiEndpoint: string; port: number; protocol: 'http'; fallback: true };
  /** `rootUrl` for a discovery-based client (`@googleapis/*`). */
  rootUrl(name: EndpointName): string;
  /**
   * Environment for a child process: metadata host, no ambient credentials, the front-end CA trusted
   * (NODE_EXTRA_CA_CERTS), and the loopback DNS preload with the front-end and HTTPS token endpoint ports.
   */
  env(): Record<string, string>;
  /**
   * Points this process at the emulator: GCE_METADATA_HOST, no ambient credentials, loopback DNS for Google hosts
   * (Cloud Run URLs without a port reach the front end, https://oauth2.googleapis.com/token the emulator's), and the
   * front-end CA (which also signs the token endpoint's certificate) added to the default trust store.
   */
  useInThisProcess(): void;
  stop(): Promise<void>;
}

export const LOOPBACK_DNS_PRELOAD = fileURLToPath(new URL('./loopback-dns.ts', import.meta.url));

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function listenTls(handler: (req: IncomingMessage, res: ServerResponse) => void, key: string, cert: string) {
  const server = createHttpsServer({ key, cert }, handler);
  return new Promise<Server>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

export async function startGcpEmulator(options: GcpEmulatorOptions = {}): Promise<GcpEmulator> {
  const started = performance.now();
  const projectId = options.projectId ?? 'krun-test-project';
  const projectNumber = options.projectNumber ?? '123456789012';
  const region = options.region ?? 'us-central1';
  const zone = options.zone ?? `${region}-1`;
  const accessTokenKey = options.accessTokenKey ?? newAccessTokenKey();
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'krun-gcp-'));

  const [issuer, ca] = await Promise.all([
    TokenIssuer.create(),
    createCertificateAuthority('krun test Cloud Run front end CA'),
  ]);
  const state = new GcpState({ projectId, projectNumber, region, zone }, accessTokenKey, issuer);
  state.addProject({ projectId, projectNumber });
  const serviceAccount = options.serviceAccount ?? `${projectNumber}-compute@developer.gserviceaccount.com`;
  const [accountId = '', domain = ''] = serviceAccount.split('@');
  state.addServiceAccount({
    projectId: domain.endsWith('.iam.gserviceaccount.com') ? domain.split('.')[0] : projectId,
    accountId,
    email: serviceAccount,
    displayName: 'Default compute service account',
  });
  const metadata: MetadataConfig = {
    projectId,
    projectNumber,
    zone,
    region,
    instanceId: '0066b7a8c9dbb1f7a1c2e3d4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff00',
    serviceAccount,
    scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    attributes: {},
    projectAttributes: {},
  };

  const apis: ApiServer[] = [];
  const servers: Server[] = [];
  try {
    const oauth2Routes = [
      route('GET', /^\/oauth2\/v1\/certs$/, () => issuer.pemCerts()),
      route('GET', /^\/oauth2\/v3\/certs$/, () => issuer.jwks()),
      tokenRoute(state),
    ];
    const [
      iam,
      iamcredentials,
      cloudresourcemanager,
      container,
      gkehub,
      run,
      oauth2,
      oauth2Https,
      connectGateway,
      metadataServer,
      sts,
      frontEnd,
      privateca,
    ] = await Promise.all([
      startApiServer(state, accessTokenKey, iamRoutes(state)),
      startApiServer(state, accessTokenKey, iamCredentialsRoutes(state)),
      startApiServer(state, accessTokenKey, resourceManagerRoutes(state)),
      startApiServer(state, accessTokenKey, containerRoutes(state)),
      startApiServer(state, accessTokenKey, gkeHubRoutes(state)),
      startApiServer(state, accessTokenKey, runRoutes(state)),
      startApiServer(state, accessTokenKey, oauth2Routes),
      // The same, as https://oauth2.googleapis.com (port 443 of that name leads here; see loopback-dns.ts), where
      // google-auth-library sends key file grants.
      ca
        .issue({ commonName: 'oauth2.googleapis.com', hosts: ['oauth2.googleapis.com'], usage: 'server' })
        .then((c) => startApiServer(state, accessTokenKey, oauth2Routes, { tls: { key: c.keyPem, cert: c.chainPem } })),
      ca
        .issue({
          commonName: 'connectgateway.googleapis.com',
          hosts: ['connectgateway.googleapis.com', '127.0.0.1'],
          usage: 'server',
        })
        .then((c) => listenTls(connectGatewayHandler(state, accessTokenKey), c.keyPem, c.chainPem)),
      listen(metadataHandler(metadata, state)),
      listen((req, res) => {
        void stsHandler(state)(req, res);
      }),
      startFrontEnd(state, issuer, ca),
      startApiServer(state, accessTokenKey, privatecaRoutes(state)),
    ]);
    apis.push(iam, iamcredentials, cloudresourcemanager, container, gkehub, run, oauth2, oauth2Https, privateca);
    state.tokenUri = `${oauth2.url}/token`;
    const oauth2HttpsPort = Number(new URL(oauth2Https.url).port);
    servers.push(metadataServer, sts, connectGateway);
    const stsUrl = `http://127.0.0.1:${(sts.address() as AddressInfo).port}`;
    const metadataHost = `127.0.0.1:${(metadataServer.address() as AddressInfo).port}`;
    // OpenID discovery for the issuer, next to its keys.
    oauth2Routes.push(
      route('GET', /^\/\.well-known\/openid-configuration$/, () => ({
        issuer: issuer.iss,
        jwks_uri: `${oauth2.url}/oauth2/v3/certs`,
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
      })),
    );
    const endpoints: Record<EndpointName, string> = {
      iam: iam.url,
      iamcredentials: iamcredentials.url,
      cloudresourcemanager: cloudresourcemanager.url,
      container: container.url,
      gkehub: gkehub.url,
      sts: stsUrl,
      run: run.url,
      oauth2: oauth2.url,
      connectgateway: `https://127.0.0.1:${(connectGateway.address() as AddressInfo).port}`,
      privateca: privateca.url,
    };
    const caFile = writePem(join(dir, 'cloud-run-front-end-ca.pem'), ca.certPem);
    const env = (): Record<string, string> => ({
      GCE_METADATA_HOST: metadataHost,
      // No ambient credentials: ADC must come from the metadata server.
      GOOGLE_APPLICATION_CREDENTIALS: '',
      CLOUDSDK_CONFIG: dir,
      NODE_EXTRA_CA_CERTS: caFile,
      [RUN_APP_PORT_ENV]: String(frontEnd.port),
      [OAUTH2_PORT_ENV]: String(oauth2HttpsPort),
      NODE_OPTIONS: `--import=${LOOPBACK_DNS_PRELOAD}`,
      // gcloud's own endpoint overrides, which krun honours like gcloud does.
      ...Object.fromEntries(
        Object.entries(endpoints)
          .filter(([name]) => name !== 'oauth2')
          .map(([name, url]) => [`CLOUDSDK_API_ENDPOINT_OVERRIDES_${name.toUpperCase()}`, `${url}/`]),
      ),
    });
    const stop = async (): Promise<void> => {
      await Promise.all([...apis.map((a) => a.close()), ...servers.map(closeServer), frontEnd.close()]);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    };
    const startupMs = performance.now() - started;
    return {
      metadataHost,
      endpoints,
      frontEnd: Object.assign(frontEnd, { caFile, caPem: ca.certPem }),
      state,
      metadata,
      issuer: {
        iss: issuer.iss,
        pemCertsUrl: `${oauth2.url}/oauth2/v1/certs`,
        jwksUri: `${oauth2.url}/oauth2/v3/certs`,
        tokens: issuer,
      },
      accessTokenKey,
      startupMs,
      clientOptions(name) {
        const url = new URL(endpoints[name]);
        return { apiEndpoint: url.hostname, port: Number(url.port), protocol: 'http', fallback: true };
      },
      rootUrl: (name) => `${endpoints[name]}/`,
      env,
      useInThisProcess() {
        process.env.GCE_METADATA_HOST = metadataHost;
        delete process.env.GCE_METADATA_IP;
        delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
        process.env.CLOUDSDK_CONFIG = dir;
        installLoopbackDns({ runAppPort: frontEnd.port, oauth2Port: oauth2HttpsPort });
        const defaults = getCACertificates('default');
        if (!defaults.includes(ca.certPem)) setDefaultCACertificates([...defaults, ca.certPem]);
      },
      stop,
    };
  } catch (err) {
    await Promise.all([...apis.map((a) => a.close()), ...servers.map(closeServer)]);
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
