// A deliberately small Kubernetes REST client for test setup and assertions against the real apiserver: the
// product's own client is what tests exercise; this one only seeds state and reads it back.
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';

export interface KubeAccess {
  readonly server: string;
  readonly token: string;
  /** PEM bundle that verifies the apiserver's serving certificate. */
  readonly ca: string;
}

export class KubeStatusError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(method: string, path: string, status: number, body: unknown) {
    const message = (body as { message?: string } | undefined)?.message ?? JSON.stringify(body);
    super(`${method} ${path}: ${status} ${message}`);
    this.status = status;
    this.body = body;
  }
}

export interface RequestOptions {
  readonly token?: string;
  readonly contentType?: string;
}

export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

export type Subject =
  | { readonly kind: 'ServiceAccount'; readonly name: string; readonly namespace: string }
  | { readonly kind: 'User' | 'Group'; readonly name: string; readonly apiGroup: 'rbac.authorization.k8s.io' };

/** The HTTP status a request ended with: 200 for any success, the API's status for a KubeStatusError. */
export async function statusOf(request: Promise<unknown>): Promise<number> {
  try {
    await request;
    return 200;
  } catch (err) {
    if (err instanceof KubeStatusError) return err.status;
    throw err;
  }
}

export class TestKube {
  readonly access: KubeAccess;
  constructor(access: KubeAccess) {
    this.access = access;
  }

  /** A client for the same server that authenticates with another bearer token (e.g. a ServiceAccount's). */
  as(token: string): TestKube {
    return new TestKube({ ...this.access, token });
  }

  request<T = unknown>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.access.server);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.access.ca,
          headers: {
            authorization: `Bearer ${options.token ?? this.access.token}`,
            accept: 'application/json',
            // Framed by length: node sends a DELETE body with neither Content-Length nor chunking, so the apiserver
            // ignored it and read it as the start of the next request on the reused keep-alive connection (400).
            ...(payload === undefined
              ? {}
              : {
                  'content-type': options.contentType ?? 'application/json',
                  'content-length': String(Buffer.byteLength(payload)),
                }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {}
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed as T);
            else reject(new KubeStatusError(method, path, status, parsed));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  /** Creates a namespace with a unique name: without kube-controller-manager, namespaces never finish deleting. */
  async createNamespace(prefix = 'test'): Promise<string> {
    const name = `${prefix}-${randomBytes(4).toString('hex')}`;
    await this.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    return name;
  }

  /** No controller creates ServiceAccounts here, not even `default`: tests create each one they use. */
  async createServiceAccount(namespace: string, name: string): Promise<void> {
    await this.post(`/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace },
    });
  }

  /** A Role with `rules` in `namespace`, bound to `subjects`: the least-privilege grant tests need. */
  async grant(namespace: string, name: string, rules: PolicyRule[], subjects: Subject[]): Promise<void> {
    const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}`;
    await this.post(`${rbac}/roles`, { metadata: { name }, rules });
    await this.post(`${rbac}/rolebindings`, {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects,
    });
  }

  async requestToken(namespace: string, serviceAccount: string, audiences: string[], expirationSeconds = 3600) {
    const res = await this.post<{ status: { token: string; expirationTimestamp: string } }>(
      `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences, expirationSeconds } },
    );
    return res.status;
  }

  async reviewToken(token: string, audiences: string[]) {
    const res = await this.post<{
      status: { authenticated?: boolean; user?: { username: string; groups?: string[] }; audiences?: string[] };
    }>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences },
    });
    return res.status;
  }
}
