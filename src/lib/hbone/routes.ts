// Which handler a request goes to. Tunnels: `CONNECT host:port` (HBONE as Istio's peers send it) and
// `/_hbone/<port|name|host:port>` (krun's own clients, through front ends that only pass POST). The path is matched
// without its query string, and an unknown target is an explicit "unknown" (404), never a silent 200. `/_hbone/`
// itself is the transport probe: a bodiless request that front ends pass on at once, even those that buffer bodies.
import type { Target, TargetTable } from './targets.ts';

export const HBONE_PREFIX = '/_hbone/';

export type Route =
  | { readonly kind: 'tunnel'; readonly target: Target; readonly requested: string }
  | { readonly kind: 'unknown-target'; readonly requested: string }
  | { readonly kind: 'proxy' }
  /** `/_hbone/` with no target: clients ask whether HTTP/2 reaches the server end to end (204) or not (426). */
  | { readonly kind: 'probe' };

export function isTunnelPath(path: string): boolean {
  const pathname = path.split('?')[0] ?? '';
  return pathname === '/_hbone' || pathname.startsWith(HBONE_PREFIX);
}

export function routeRequest(
  targets: TargetTable,
  method: string,
  path: string | undefined,
  authority: string | undefined,
): Route {
  if (method === 'CONNECT') {
    const requested = authority ?? '';
    const target = targets.byAuthority(requested);
    return target ? { kind: 'tunnel', target, requested } : { kind: 'unknown-target', requested };
  }
  if (path === undefined || !isTunnelPath(path)) return { kind: 'proxy' };
  const raw = (path.split('?')[0] ?? '').slice(HBONE_PREFIX.length).replace(/\/+$/, '');
  if (raw === '') return { kind: 'probe' };
  let requested: string;
  try {
    requested = decodeURIComponent(raw);
  } catch {
    return { kind: 'unknown-target', requested: raw };
  }
  const target = requested.includes('/') ? undefined : targets.byName(requested);
  return target ? { kind: 'tunnel', target, requested } : { kind: 'unknown-target', requested };
}
