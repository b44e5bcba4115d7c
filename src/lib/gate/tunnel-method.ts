// How the gate asks a service for a tunnel. `post`: `POST /_hbone/TARGET`, krun's own form, which passes Cloud Run's
// front end (it forwards ordinary requests only). `connect`: HTTP/2 CONNECT (RFC 9113 §8.5) with `:authority` the
// target `host:port`, as Istio's ztunnel speaks HBONE; `krun run` accepts both, but only a path with no front end
// that drops CONNECT can carry it (krun run on a VM, or behind a proxy that passes CONNECT).
import { UsageError } from '../errors.ts';
import { tunnelPath } from '../hbone/url.ts';
import { formatHostPort, parseHostPort } from '../net/address.ts';

import type { TunnelMethod } from './defaults.ts';

export interface TunnelRequest {
  readonly headers: Readonly<Record<string, string>>;
  /** For messages: `https://host/_hbone/15003`, `CONNECT 127.0.0.1:15003 at https://host`. */
  readonly describe: string;
}

/** The request headers of a tunnel to `target` (a port, a name, or `host:port`) at `origin`. */
export function tunnelRequest(method: TunnelMethod, origin: string, target: string): TunnelRequest {
  if (method === 'post') {
    const path = tunnelPath(target);
    return {
      headers: { ':method': 'POST', ':path': path, 'content-type': 'application/octet-stream' },
      describe: `${origin}${path}`,
    };
  }
  const address = parseHostPort(target);
  if (!address) {
    throw new UsageError(`--tunnel-method connect needs --target as a port or host:port, not "${target}"`, {
      hints: ['--target 15003 (the workload mesh port as krun run serves it)', 'or --tunnel-method post'],
    });
  }
  const authority = formatHostPort(address);
  return { headers: { ':method': 'CONNECT', ':authority': authority }, describe: `CONNECT ${authority} at ${origin}` };
}
