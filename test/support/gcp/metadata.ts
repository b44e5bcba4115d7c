// The GCE / Cloud Run metadata server (`/computeMetadata/v1/...`): what a workload learns about itself, and its
// default service account's access and identity tokens. Like the real one it requires `Metadata-Flavor: Google`,
// returns it on every response, and lists directories as text or, with `?recursive=true`, as JSON.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GcpState } from './state.ts';

export interface MetadataConfig {
  projectId: string;
  projectNumber: string;
  zone: string;
  region: string;
  instanceId: string;
  /** The default service account's email. */
  serviceAccount: string;
  scopes: string[];
  /** `instance/attributes/*` (e.g. cluster-name, cluster-location on GKE nodes). */
  attributes: Record<string, string>;
  /** `project/attributes/*`. */
  projectAttributes: Record<string, string>;
}

type Leaf = string | ((query: URLSearchParams) => string | MetadataError);
interface Tree {
  [name: string]: Leaf | Tree;
}

class MetadataError {
  readonly status: number;
  readonly message: string;
  constructor(status: number, message: string) {
    this.status = status;
    this.message = message;
  }
}

const BASE = '/computeMetadata/v1/';

function tree(config: MetadataConfig, state: GcpState): Tree {
  const account = (): Tree => ({
    aliases: 'default',
    email: config.serviceAccount,
    scopes: config.scopes.join('\n'),
    token: (query) => {
      const scopes = query.get('scopes')?.split(',') ?? config.scopes;
      const { token, expiresIn } = state.accessToken(config.serviceAccount, { scopes });
      return JSON.stringify({ access_token: token, expires_in: expiresIn - 1, token_type: 'Bearer' });
    },
    identity: (query) => {
      const audience = query.get('audience');
      if (!audience) return new MetadataError(400, 'non-empty audience parameter required');
      // format=standard (the default) omits the email; full includes it.
      return state.idToken(config.serviceAccount, audience, { includeEmail: query.get('format') === 'full' });
    },
  });
  return {
    project: {
      'project-id': config.projectId,
      'numeric-project-id': config.projectNumber,
      attributes: { ...config.projectAttributes },
    },
    instance: {
      id: config.instanceId,
      zone: `projects/${config.projectNumber}/zones/${config.zone}`,
      region: `projects/${config.projectNumber}/regions/${config.region}`,
      attributes: { ...config.attributes },
      'service-accounts': { default: account(), [config.serviceAccount]: account() },
    },
  };
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** JSON of a directory: built-in names in camelCase, user attribute names as they are. */
function recursive(node: Tree, verbatim: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, child] of Object.entries(node)) {
    // Token-minting leaves are not part of a recursive listing, as on the real server.
    if (typeof child === 'function') continue;
    out[verbatim ? name : camel(name)] = typeof child === 'string' ? child : recursive(child, name === 'attributes');
  }
  return out;
}

function send(res: ServerResponse, status: number, body: string, type = 'application/text'): void {
  res.writeHead(status, {
    'metadata-flavor': 'Google',
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    server: 'Metadata Server for VM',
  });
  res.end(body);
}

export function metadataHandler(config: MetadataConfig, state: GcpState) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://metadata.google.internal');
    if (req.headers['metadata-flavor'] !== 'Google') {
      send(
        res,
        403,
        `Your client does not have permission to get URL ${url.pathname} from this server. Missing Metadata-Flavor:Google header.\n`,
        'text/html; charset=UTF-8',
      );
      return;
    }
    if (req.headers['x-forwarded-for']) {
      send(res, 403, 'Request denied: X-Forwarded-For header present.\n', 'text/html; charset=UTF-8');
      return;
    }
    if (url.pathname === '/' || url.pathname === '/computeMetadata/' || url.pathname === '/computeMetadata') {
      send(res, 200, 'v1/\n');
      return;
    }
    if (!url.pathname.startsWith(BASE) && url.pathname !== BASE.slice(0, -1)) {
      send(res, 404, 'Not Found\n', 'text/html; charset=UTF-8');
      return;
    }
    const parts = url.pathname.slice(BASE.length).split('/').filter(Boolean);
    let node: Leaf | Tree = tree(config, state);
    for (const part of parts) {
      const next: Leaf | Tree | undefined = typeof node === 'object' ? node[decodeURIComponent(part)] : undefined;
      if (next === undefined) {
        send(res, 404, 'Not Found\n', 'text/html; charset=UTF-8');
        return;
      }
      node = next;
    }
    if (typeof node === 'function') {
      const value = node(url.searchParams);
      if (value instanceof MetadataError) send(res, value.status, `${value.message}\n`);
      else send(res, 200, value, value.startsWith('{') ? 'application/json' : 'application/text');
    } else if (typeof node === 'string') {
      send(res, 200, node);
    } else if (url.searchParams.get('recursive') === 'true') {
      send(res, 200, JSON.stringify(recursive(node, parts.at(-1) === 'attributes')), 'application/json');
    } else {
      const listing = Object.entries(node).map(([name, child]) => (typeof child === 'object' ? `${name}/` : name));
      send(res, 200, `${listing.join('\n')}\n`);
    }
  };
}
