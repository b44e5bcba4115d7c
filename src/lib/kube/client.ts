// A small Kubernetes REST client for the launcher's handful of calls (ConfigMaps, Secrets, TokenRequest). It loads
// nothing beyond node:https, so `krun run` starts fast, and turns API failures into errors that say what to fix.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { KrunError, PermissionError } from '../errors.ts';
import type { KubeConnection } from './kubeconfig.ts';

export interface KubeStatus {
  readonly reason?: string;
  readonly message?: string;
  readonly details?: { kind?: string; name?: string };
}

/** The API server answered with a non-2xx status. */
export class KubeApiError extends KrunError {
  readonly status: number;
  readonly reason: string | undefined;
  constructor(message: string, status: number, reason: string | undefined, hints: readonly string[]) {
    super(message, { hints });
    this.status = status;
    this.reason = reason;
  }
}

/** The API server could not be reached at all. */
export class KubeUnreachableError extends KrunError {}

export interface RequestOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** The body's media type; default application/json (server-side apply: application/apply-patch+yaml). */
  readonly contentType?: string;
}

/** A Kubernetes object, as far as krun needs to know it. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly resourceVersion?: string;
    readonly [key: string]: unknown;
  };
  readonly [key: string]: unknown;
}

/** The plural resource of each kind krun creates (no discovery round trip). */
const PLURALS: Readonly<Record<string, string>> = {
  Namespace: 'namespaces',
  ServiceAccount: 'serviceaccounts',
  ConfigMap: 'configmaps',
  Secret: 'secrets',
  Service: 'services',
  Deployment: 'deployments',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
  WorkloadEntry: 'workloadentries',
  WorkloadGroup: 'workloadgroups',
  ServiceEntry: 'serviceentries',
  DestinationRule: 'destinationrules',
  VirtualService: 'virtualservices',
  Gateway: 'gateways',
  PeerAuthentication: 'peerauthentications',
  Sidecar: 'sidecars',
  Node: 'nodes',
  RuntimeClass: 'runtimeclasses',
  Job: 'jobs',
  DaemonSet: 'daemonsets',
  Pod: 'pods',
  NetworkPolicy: 'networkpolicies',
};

/** The REST path of a kind's collection: `/api/v1/namespaces/ns/services`, `/apis/rbac…/clusterroles`. */
export function collectionPath(apiVersion: string, kind: string, namespace?: string): string {
  const plural = PLURALS[kind];
  if (!plural) throw new KrunError(`krun doesn't know the resource of kind ${kind}`);
  const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return `${root}${namespace ? `/namespaces/${namespace}` : ''}/${plural}`;
}

/** The REST path of an object: `/api/v1/namespaces/ns/serviceaccounts/default`, `/apis/rbac…/roles/x`. */
export function objectPath(object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  const collection = collectionPath(object.apiVersion, object.kind, object.metadata.namespace);
  return `${collection}/${encodeURIComponent(object.metadata.name)}`;
}

/** The field manager krun's server-side applies use. */
export const FIELD_MANAGER = 'krun';

const VERB: Record<string, string> = { GET: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/** "/api/v1/namespaces/ns/serviceaccounts/sa/token" -> "create serviceaccounts/token in namespace ns". */
export function describeAccess(method: string, path: string): string {
  const m = /\/namespaces\/([^/]+)\/([^/?]+)(?:\/[^/?]+(?:\/([^/?]+))?)?/.exec(path);
  const verb = VERB[method] ?? method.toLowerCase();
  if (!m) return `${verb} ${path}`;
  const resource = m[3] ? `${m[2]}/${m[3]}` : m[2];
  return `${verb} ${resource} in namespace ${m[1]}`;
}

export class KubeClient {
  readonly connection: KubeConnection;
  private readonly agent: Agent;

  constructor(connection: KubeConnection) {
    this.connection = connection;
    this.agent = new Agent({
      keepAlive: true,
      ...(connection.ca ? { ca: connection.ca } : {}),
      ...(connection.clientCert ? { cert: connection.clientCert, key: connection.clientKey } : {}),
      rejectUnauthorized: !connection.insecureSkipTlsVerify,
    });
  }

  /** The bearer token of this connection, if it uses one (read fresh: token files rotate). */
  async bearer(): Promise<string | undefined> {
    if (this.connection.tokenProvider) return this.connection.tokenProvider();
    if (this.connection.tokenFile) return (await readFile(this.connection.tokenFile, 'utf8')).trim();
    return this.connection.token;
  }

  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const token = await this.bearer();
    const url = this.url(path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.agent,
          timeout: options.timeoutMs ?? 30_000,
          ...(options.signal ? { signal: options.signal } : {}),
          headers: {
            accept: 'application/json',
            'user-agent': 'krun',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(payload === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = { message: text.slice(0, 200) };
            }
            if (status >= 200 && status < 300) resolve(parsed as T);
            else reject(this.apiError(method, path, status, parsed as KubeStatus | undefined));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 30_000} ms`)));
      req.on('error', (err) => reject(options.signal?.aborted ? options.signal.reason : this.unreachable(err)));
      req.end(payload);
    });
  }

  /**
   * A GET whose answer is a stream (a watch): the response once the server answered 2xx, API errors as `request`
   * gives them. With `idleMs`, a response that sends nothing for that long is torn down (a connection that died
   * silently).
   */
  async stream(path: string, options: { readonly signal?: AbortSignal; readonly idleMs?: number } = {}) {
    const token = await this.bearer();
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(this.url(path), {
        agent: this.agent,
        ...(options.signal ? { signal: options.signal } : {}),
        headers: {
          accept: 'application/json',
          'user-agent': 'krun',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      });
      if (options.idleMs) {
        req.setTimeout(options.idleMs, () => req.destroy(new Error(`nothing received for ${options.idleMs} ms`)));
      }
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(res);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          let body: KubeStatus | undefined;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as KubeStatus;
          } catch {}
          reject(this.apiError('GET', path, status, body));
        });
      });
      req.on('error', (err) => reject(options.signal?.aborted ? options.signal.reason : this.unreachable(err)));
      req.end();
    });
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, undefined, options);
  }

  post<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, body, options);
  }

  /** Deletes the object at `path`; true if it existed. */
  async delete(path: string, options?: RequestOptions & { dryRun?: boolean }): Promise<boolean> {
    try {
      const dryRun = options?.dryRun ? `${path.includes('?') ? '&' : '?'}dryRun=All` : '';
      await this.request('DELETE', `${path}${dryRun}`, undefined, options);
      return true;
    } catch (err) {
      if (apiStatus(err) === 404) return false;
      throw err;
    }
  }

  /** The objects of a collection (`collectionPath()`) whose labels match `labelSelector` (`a=b,c=d`). */
  async list<T = KubeObject>(path: string, labelSelector: string, options?: RequestOptions): Promise<T[]> {
    const list = await this.get<{ items?: T[] }>(`${path}?labelSelector=${encodeURIComponent(labelSelector)}`, options);
    return list.items ?? [];
  }

  /** The object at `path`, or undefined when it does not exist. */
  async find<T>(path: string, options?: RequestOptions): Promise<T | undefined> {
    try {
      return await this.get<T>(path, options);
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * Server-side apply (`kubectl apply --server-side --force-conflicts --field-manager=krun`): creates the object or
   * makes the fields krun owns equal to `object`. `dryRun` asks the server to validate without persisting.
   */
  apply<T = KubeObject>(object: KubeObject, options: RequestOptions & { dryRun?: boolean } = {}): Promise<T> {
    const query = `fieldManager=${FIELD_MANAGER}&force=true${options.dryRun ? '&dryRun=All' : ''}`;
    return this.request<T>('PATCH', `${objectPath(object)}?${query}`, object, {
      ...options,
      contentType: 'application/apply-patch+yaml',
    });
  }

  close(): void {
    this.agent.destroy();
  }

  /** The server's own path (the Connect Gateway's, a proxy's) is kept, as kubectl does. */
  private url(path: string): URL {
    const base = new URL(this.connection.server);
    return new URL(`${base.pathname.replace(/\/+$/, '')}${path}`, base);
  }

  private unreachable(err: Error): KrunError {
    return new KubeUnreachableError(`can't reach the Kubernetes API server ${this.connection.server}: ${err.message}`, {
      cause: err,
      hints: [
        `check the server address in ${this.connection.source}`,
        'check that this machine can reach it (firewall, VPC connector, authorized networks)',
      ],
    });
  }

  private apiError(method: string, path: string, status: number, body: KubeStatus | undefined): KrunError {
    const what = describeAccess(method, path);
    // A Google front end (the Connect Gateway) answers with Google's error shape, not a Status.
    const google = (body as { error?: { message?: string } } | undefined)?.error?.message;
    const detail = body?.message ?? google ?? `HTTP ${status}`;
    if (status === 401) {
      return new KubeApiError(`the API server rejected krun's credentials (${what}): ${detail}`, status, body?.reason, [
        `check the user credentials in ${this.connection.source}`,
      ]);
    }
    if (status === 403) {
      const err = new PermissionError(`forbidden: krun may not ${what}: ${detail}`, {
        hints: [`grant "${what}" to krun's identity with a Role and RoleBinding (krun setup-namespace does this)`],
      });
      return Object.assign(err, { status, reason: body?.reason });
    }
    return new KubeApiError(`${what} failed: ${detail}`, status, body?.reason, []);
  }
}

/** The status of an error from KubeClient, if it was an API answer. */
export function apiStatus(err: unknown): number | undefined {
  const status = (err as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' ? status : undefined;
}
