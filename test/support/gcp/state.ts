// The emulator's in-memory world: projects, service accounts, IAM policies, GKE clusters, fleet memberships and Cloud
// Run services. Tests seed it directly (add*, grant) and read it back; the emulated APIs read and change the same
// objects, so what a test seeds is exactly what a client sees.
import { createHash, createPublicKey, generateKeyPair, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { KubeAccess } from '../kube.ts';
import { type CertificateAuthority, createCertificateAuthority } from '../pki.ts';
import { roleGrants } from './roles.ts';
import { mintAccessToken, type TokenIssuer } from './tokens.ts';

export interface Project {
  readonly projectId: string;
  readonly projectNumber: string;
  name: string;
  labels: Record<string, string>;
  parent?: { type: 'organization' | 'folder'; id: string };
  readonly createTime: string;
}

export interface ServiceAccount {
  readonly projectId: string;
  readonly email: string;
  readonly uniqueId: string;
  displayName: string;
  description: string;
  disabled: boolean;
  readonly etag: string;
}

/** A user-managed service account key: Google keeps only the public half (the private one is in the key file). */
export interface ServiceAccountKey {
  /** `projects/P/serviceAccounts/E/keys/K`. */
  readonly name: string;
  /** 40 hex digits: the key file's `private_key_id`. */
  readonly keyId: string;
  readonly email: string;
  readonly publicKey: KeyObject;
  readonly validAfterTime: string;
  readonly validBeforeTime: string;
}

/** Google's token endpoint: its key files' `token_uri`, and where google-auth-library posts key grants regardless. */
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

const generateRsaKeyPair = promisify(generateKeyPair);

export interface Binding {
  role: string;
  members: string[];
  condition?: { expression: string; title?: string; description?: string };
}

export interface Policy {
  version: number;
  bindings: Binding[];
  etag: string;
}

export interface Cluster {
  readonly projectId: string;
  readonly location: string;
  readonly name: string;
  /** `host[:port]`, as GKE reports it (no scheme). */
  endpoint: string;
  /** PEM of the cluster CA (served base64-encoded in masterAuth.clusterCaCertificate). */
  caCertificatePem: string;
  resourceLabels: Record<string, string>;
  readonly id: string;
  readonly createTime: string;
  currentMasterVersion: string;
  /** Admin access to the real apiserver behind this cluster, used for TokenReview (STS). Never served. */
  kube?: KubeAccess;
}

export interface Membership {
  readonly projectId: string;
  readonly location: string;
  readonly name: string;
  readonly uniqueId: string;
  /** `projects/P/locations/L/clusters/N` of the GKE cluster, if the member is one. */
  cluster?: string;
  /** A non-GKE member's apiserver, which its Connect Agent reaches (the Connect Gateway). Never served. */
  kube?: KubeAccess;
  labels: Record<string, string>;
  readonly createTime: string;
}

export type Ingress =
  | 'INGRESS_TRAFFIC_ALL'
  | 'INGRESS_TRAFFIC_INTERNAL_ONLY'
  | 'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER';

export interface RunService {
  readonly projectId: string;
  readonly region: string;
  readonly name: string;
  readonly uid: string;
  generation: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ingress: Ingress;
  image: string;
  /** The identity the container runs as. */
  serviceAccount: string;
  /** HTTP/2 end to end (`--use-http2`: the container port is named h2c). */
  http2: boolean;
  containerPort: number;
  invokerIamDisabled: boolean;
  customAudiences: string[];
  readonly createTime: string;
  updateTime: string;
  creator: string;
  /** Where the front end forwards requests: the local port the test's "container" listens on (127.0.0.1). */
  backendPort?: number;
  etag: string;
}

export interface Operation {
  readonly name: string;
  done: boolean;
  metadata?: Record<string, unknown>;
  response?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/** Cloud Run's short region codes in `*-<hash>-<code>.a.run.app` hosts. */
const REGION_CODES: Readonly<Record<string, string>> = {
  'us-central1': 'uc',
  'us-east1': 'ue',
  'us-east4': 'uk',
  'us-west1': 'uw',
  'us-west2': 'wl',
  'europe-west1': 'ew',
  'europe-west2': 'nw',
  'europe-west3': 'ey',
  'europe-west4': 'ez',
  'europe-north1': 'lz',
  'asia-east1': 'de',
  'asia-northeast1': 'an',
  'asia-southeast1': 'as',
  'australia-southeast1': 'ts',
};

export function regionCode(region: string): string {
  return REGION_CODES[region] ?? createHash('sha256').update(region).digest('hex').slice(0, 2);
}

/** The policy etag Google returns for a resource whose policy was never set. */
export const EMPTY_POLICY_ETAG = 'ACAB';

function newEtag(): string {
  return randomBytes(8).toString('base64');
}

function now(): string {
  return new Date().toISOString();
}

function numericId(digits: number): string {
  let id = String(1 + ((randomBytes(1)[0] ?? 0) % 9));
  while (id.length < digits) id += String((randomBytes(1)[0] ?? 0) % 10);
  return id;
}

/** `user:` or `serviceAccount:` member for an email; members (`x:y`) are returned as they are. */
export function memberFor(principal: string): string {
  if (principal.includes(':') || principal === 'allUsers' || principal === 'allAuthenticatedUsers') return principal;
  return principal.endsWith('.gserviceaccount.com') ? `serviceAccount:${principal}` : `user:${principal}`;
}

export class StaleEtagError extends Error {}

/** A Certificate Authority Service pool with one enabled root CA. */
export interface CaPool {
  /** `projects/P/locations/L/caPools/N` */
  readonly name: string;
  readonly projectId: string;
  readonly ca: CertificateAuthority;
  /** The issuance policy's maximumLifetime: longer requests get this lifetime. */
  maximumLifetimeSeconds?: number | undefined;
  /** Every certificate issued, in order: the request as received and who asked. */
  readonly issued: { readonly id: string; readonly member: string; readonly request: Record<string, unknown> }[];
}

export interface Defaults {
  readonly projectId: string;
  readonly projectNumber: string;
  readonly region: string;
  readonly zone: string;
}

export class GcpState {
  readonly projects = new Map<string, Project>();
  /** By email. */
  readonly serviceAccounts = new Map<string, ServiceAccount>();
  /** By full resource name: `projects/P`, `projects/P/serviceAccounts/E`, `projects/P/locations/R/services/S`. */
  readonly policies = new Map<string, Policy>();
  /** By `projects/P/locations/L/clusters/N`. */
  readonly clusters = new Map<string, Cluster>();
  /** By `projects/P/locations/L/memberships/M`. */
  readonly memberships = new Map<string, Membership>();
  /** By `projects/P/locations/R/services/S`. */
  readonly runServices = new Map<string, RunService>();
  /** By `projects/P/locations/R/operations/O`. */
  readonly operations = new Map<string, Operation>();
  /** By `projects/P/locations/L/caPools/N`. */
  readonly caPools = new Map<string, CaPool>();
  /** User-managed service account keys, by key id. */
  readonly serviceAccountKeys = new Map<string, ServiceAccountKey>();
  /** The `token_uri` key files name: the emulator's oauth2 endpoint + `/token` once it listens. */
  tokenUri = GOOGLE_TOKEN_URL;
  readonly defaults: Defaults;
  readonly #tokenKey: string;
  readonly #issuer: TokenIssuer;

  constructor(defaults: Defaults, tokenKey: string, issuer: TokenIssuer) {
    this.defaults = defaults;
    this.#tokenKey = tokenKey;
    this.#issuer = issuer;
  }

  // --- projects

  addProject({
    projectId,
    projectNumber = numericId(12),
    name = projectId,
    labels = {},
    parent,
  }: {
    projectId: string;
    projectNumber?: string;
    name?: string;
    labels?: Record<string, string>;
    parent?: Project['parent'];
  }): Project {
    const project: Project = {
      projectId,
      projectNumber,
      name,
      labels,
      createTime: now(),
      ...(parent ? { parent } : {}),
    };
    this.projects.set(projectId, project);
    return project;
  }

  /** A project by id or number. */
  project(idOrNumber: string): Project | undefined {
    return this.projects.get(idOrNumber) ?? [...this.projects.values()].find((p) => p.projectNumber === idOrNumber);
  }

  // --- service accounts

  addServiceAccount({
    projectId = this.defaults.projectId,
    accountId,
    email = `${accountId}@${projectId}.iam.gserviceaccount.com`,
    displayName = '',
    description = '',
  }: {
    projectId?: string;
    accountId: string;
    email?: string;
    displayName?: string;
    description?: string;
  }): ServiceAccount {
    if (this.serviceAccounts.has(email)) throw new Error(`service account ${email} already exists`);
    const sa: ServiceAccount = {
      projectId,
      email,
      uniqueId: numericId(21),
      displayName,
      description,
      disabled: false,
      etag: 'MDEwMjE5MjA=',
    };
    this.serviceAccounts.set(email, sa);
    return sa;
  }

  /** A service account by email or unique id. */
  serviceAccount(emailOrId: string): ServiceAccount | undefined {
    return (
      this.serviceAccounts.get(emailOrId) ?? [...this.serviceAccounts.values()].find((s) => s.uniqueId === emailOrId)
    );
  }

  /**
   * A new RSA 2048 key for a service account, as `projects.serviceAccounts.keys.create` makes it: the key is kept
   * (public half) and the Google credentials file (JSON text, `private_key` PKCS#8 PEM) returned.
   */
  async createServiceAccountKey(email: string): Promise<{ key: ServiceAccountKey; keyFile: string }> {
    const sa = this.serviceAccount(email);
    if (!sa) throw new Error(`no service account ${email}`);
    const { publicKey, privateKey } = await generateRsaKeyPair('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const keyId = randomBytes(20).toString('hex');
    const key: ServiceAccountKey = {
      name: `projects/${sa.projectId}/serviceAccounts/${sa.email}/keys/${keyId}`,
      keyId,
      email: sa.email,
      publicKey: createPublicKey(publicKey),
      validAfterTime: now().replace(/\.\d{3}Z$/, 'Z'),
      validBeforeTime: '9999-12-31T23:59:59Z',
    };
    this.serviceAccountKeys.set(keyId, key);
    // Google's field order and formatting.
    const file = {
      type: 'service_account',
      project_id: sa.projectId,
      private_key_id: keyId,
      private_key: privateKey,
      client_email: sa.email,
      client_id: sa.uniqueId,
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: this.tokenUri,
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
      client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(sa.email)}`,
      universe_domain: 'googleapis.com',
    };
    return { key, keyFile: `${JSON.stringify(file, null, 2)}\n` };
  }

  /** A new key file (JSON text) for a service account: what `gcloud iam service-accounts keys create` writes. */
  async createKeyFile(email: string): Promise<string> {
    return (await this.createServiceAccountKey(email)).keyFile;
  }

  /** The keys of a service account that may sign a JWT-bearer grant. */
  keysOf(email: string): ServiceAccountKey[] {
    return [...this.serviceAccountKeys.values()].filter((k) => k.email === email);
  }

  // --- Certificate Authority Service

  async addCaPool({
    projectId = this.defaults.projectId,
    location = this.defaults.region,
    name,
  }: {
    projectId?: string;
    location?: string;
    name: string;
  }): Promise<CaPool> {
    const pool: CaPool = {
      name: `projects/${projectId}/locations/${location}/caPools/${name}`,
      projectId,
      ca: await createCertificateAuthority(`${name} root CA`),
      issued: [],
    };
    this.caPools.set(pool.name, pool);
    return pool;
  }

  // --- IAM

  getPolicy(resource: string): Policy {
    return structuredClone(this.policies.get(resource) ?? { version: 1, bindings: [], etag: EMPTY_POLICY_ETAG });
  }

  /** Replaces the policy; a given etag must match the current one (read-modify-write), else StaleEtagError. */
  setPolicy(resource: string, policy: { version?: number; bindings?: Binding[]; etag?: string }): Policy {
    const current = this.getPolicy(resource);
    if (policy.etag && policy.etag !== current.etag) throw new StaleEtagError(resource);
    const bindings = (policy.bindings ?? [])
      .map((b) => ({ ...b, members: [...new Set(b.members)].sort() }))
      .filter((b) => b.members.length > 0);
    const next: Policy = { version: policy.version ?? 1, bindings, etag: newEtag() };
    this.policies.set(resource, next);
    return structuredClone(next);
  }

  /** Adds `member` to `role` on `resource` (test seeding; no etag check). */
  grant(resource: string, role: string, principal: string): void {
    const policy = this.getPolicy(resource);
    const member = memberFor(principal);
    const binding = policy.bindings.find((b) => b.role === role && !b.condition);
    if (binding) binding.members.push(member);
    else policy.bindings.push({ role, members: [member] });
    this.setPolicy(resource, { version: policy.version, bindings: policy.bindings });
  }

  /** The members a caller matches in a policy. */
  #identities(member: string | undefined): string[] {
    if (!member) return ['allUsers'];
    const ids = ['allUsers', 'allAuthenticatedUsers', member];
    // GKE workload identity: both the legacy member and the principal:// form name a KSA.
    const legacy = /^serviceAccount:([^[]+\.svc\.id\.goog)\[([^/]+)\/([^\]]+)\]$/.exec(member);
    if (legacy) {
      const [, pool, ns, ksa] = legacy;
      const project = this.project(pool?.replace(/\.svc\.id\.goog$/, '') ?? '');
      if (project) {
        const prefix = `iam.googleapis.com/projects/${project.projectNumber}/locations/global/workloadIdentityPools/${pool}`;
        ids.push(`principal://${prefix}/subject/ns/${ns}/sa/${ksa}`, `principalSet://${prefix}/namespace/${ns}`);
      }
    }
    return ids;
  }

  /** Whether `member` (undefined = anonymous) holds `permission` on any of `resources` (a resource and its ancestors). */
  allows(member: string | undefined, permission: string, resources: readonly string[]): boolean {
    const ids = this.#identities(member);
    return resources.some((resource) =>
      this.getPolicy(resource).bindings.some(
        (b) => !b.condition && roleGrants(b.role, permission) && b.members.some((m) => ids.includes(m)),
      ),
    );
  }

  // --- tokens

  /** An access token for `principal` (an email or an IAM member), as the metadata server or IAM Credentials mint. */
  accessToken(
    principal: string,
    { lifetimeSeconds = 3600, scopes }: { lifetimeSeconds?: number; scopes?: readonly string[] } = {},
  ): { token: string; expiresIn: number; exp: number } {
    const member = memberFor(principal);
    const email = /^(user|serviceAccount):(.+@.+)$/.exec(member)?.[2];
    const exp = Math.floor(Date.now() / 1000) + lifetimeSeconds;
    const token = mintAccessToken(this.#tokenKey, {
      member,
      ...(email && !email.includes('[') ? { email } : {}),
      exp,
      ...(scopes ? { scopes } : {}),
    });
    return { token, expiresIn: lifetimeSeconds, exp };
  }

  /** How long the ID tokens minted from now on last (Google's: an hour; tests of refreshing shorten it). */
  idTokenLifetimeSeconds = 3600;

  /** An ID token for a service account (sub = its unique id) or a user email. */
  idToken(email: string, audience: string, { includeEmail = true }: { includeEmail?: boolean } = {}): string {
    const sa = this.serviceAccount(email);
    const subject = sa?.uniqueId ?? createHash('sha256').update(email).digest('hex').slice(0, 21);
    const lifetimeSeconds = this.idTokenLifetimeSeconds;
    return this.#issuer.idToken({ audience, subject, lifetimeSeconds, ...(includeEmail ? { email } : {}) });
  }

  // --- GKE and fleet

  addCluster({
    projectId = this.defaults.projectId,
    location = this.defaults.region,
    name,
    kube,
    endpoint,
    caCertificatePem,
    resourceLabels = {},
    currentMasterVersion = '1.33.2-gke.1000',
  }: {
    projectId?: string;
    location?: string;
    name: string;
    /** The real apiserver this cluster is: endpoint and CA come from it, and STS reviews tokens with it. */
    kube?: KubeAccess;
    endpoint?: string;
    caCertificatePem?: string;
    resourceLabels?: Record<string, string>;
    currentMasterVersion?: string;
  }): Cluster {
    const cluster: Cluster = {
      projectId,
      location,
      name,
      endpoint: endpoint ?? (kube ? new URL(kube.server).host : '34.0.0.1'),
      caCertificatePem: caCertificatePem ?? kube?.ca ?? '',
      resourceLabels,
      id: randomBytes(32).toString('hex'),
      createTime: now(),
      currentMasterVersion,
      ...(kube ? { kube } : {}),
    };
    this.clusters.set(`projects/${projectId}/locations/${location}/clusters/${name}`, cluster);
    return cluster;
  }

  addMembership({
    projectId = this.defaults.projectId,
    location = 'global',
    name,
    cluster,
    kube,
    labels = {},
  }: {
    projectId?: string;
    location?: string;
    name: string;
    /** `projects/P/locations/L/clusters/N`. */
    cluster?: string;
    /** A non-GKE member's apiserver (reached through the Connect Gateway). */
    kube?: KubeAccess;
    labels?: Record<string, string>;
  }): Membership {
    const membership: Membership = {
      projectId,
      location,
      name,
      uniqueId: randomUUID(),
      labels,
      createTime: now(),
      ...(cluster ? { cluster } : {}),
      ...(kube ? { kube } : {}),
    };
    this.memberships.set(`projects/${projectId}/locations/${location}/memberships/${name}`, membership);
    return membership;
  }

  // --- Cloud Run

  addRunService({
    projectId = this.defaults.projectId,
    region = this.defaults.region,
    name,
    backendPort,
    http2 = false,
    allowUnauthenticated = false,
    ingress = 'INGRESS_TRAFFIC_ALL',
    image = `${region}-docker.pkg.dev/${projectId}/krun/${name}:latest`,
    serviceAccount,
    labels = {},
    annotations = {},
    customAudiences = [],
  }: {
    projectId?: string;
    region?: string;
    name: string;
    backendPort?: number;
    http2?: boolean;
    allowUnauthenticated?: boolean;
    ingress?: Ingress;
    image?: string;
    serviceAccount?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    customAudiences?: string[];
  }): RunService {
    const project = this.project(projectId);
    if (!project) throw new Error(`no project ${projectId}`);
    const service: RunService = {
      projectId,
      region,
      name,
      uid: randomUUID(),
      generation: 1,
      labels,
      annotations,
      ingress,
      image,
      serviceAccount: serviceAccount ?? `${project.projectNumber}-compute@developer.gserviceaccount.com`,
      http2,
      containerPort: 8080,
      invokerIamDisabled: false,
      customAudiences,
      createTime: now(),
      updateTime: now(),
      creator: 'krun-test@example.com',
      etag: newEtag(),
      ...(backendPort === undefined ? {} : { backendPort }),
    };
    const key = `projects/${projectId}/locations/${region}/services/${name}`;
    this.runServices.set(key, service);
    if (allowUnauthenticated) this.grant(key, 'roles/run.invoker', 'allUsers');
    return service;
  }

  /** The service's URLs: `https://<name>-<hash>-<code>.a.run.app` first (its `uri`), then the deterministic one. */
  runServiceUrls(service: RunService): string[] {
    const project = this.project(service.projectId);
    const hash = createHash('sha256').update(service.projectId).digest('hex');
    // Cloud Run's hash is 10 base-36 characters, stable per project.
    const short = BigInt(`0x${hash.slice(0, 16)}`)
      .toString(36)
      .padStart(10, '0')
      .slice(0, 10);
    return [
      `https://${service.name}-${short}-${regionCode(service.region)}.a.run.app`,
      `https://${service.name}-${project?.projectNumber ?? '0'}.${service.region}.run.app`,
    ];
  }

  /** The service a front-end host name belongs to. */
  runServiceForHost(host: string): RunService | undefined {
    const origin = `https://${host.toLowerCase()}`;
    return [...this.runServices.values()].find((s) => this.runServiceUrls(s).includes(origin));
  }

  runServiceName(service: RunService): string {
    return `projects/${service.projectId}/locations/${service.region}/services/${service.name}`;
  }
}
