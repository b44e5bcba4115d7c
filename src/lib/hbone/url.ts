// What the user types: the tunnel URL (`https://SERVICE/_hbone/22`, `http://HOST:PORT/_hbone/NAME`, or the original
// krun's `HOST:PORT` shorthand for `https://HOST/_hbone/PORT`) and `-L [addr:]localport:target` specs.
import { UsageError } from '../errors.ts';
import { HBONE_PREFIX, isTunnelPath } from './routes.ts';

export interface TunnelUrl {
  /** `http(s)://host[:port]`: where the HTTP/2 connection goes. */
  readonly origin: URL;
  /** The `<port|name|host:port>` of a `/_hbone/...` path, if the URL names one. */
  readonly target?: string;
}

export interface ForwardSpec {
  readonly bindHost: string;
  readonly localPort: number;
  readonly target: string;
}

const URL_HINTS = ['krun hbone https://SERVICE-URL/_hbone/22', 'krun hbone --help'];

export function parseTunnelUrl(text: string): TunnelUrl {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const m = /^([^\s/:]+):(\d+)$/.exec(text);
    if (!m) throw new UsageError(`"${text}" is not a tunnel URL`, { hints: URL_HINTS });
    return { origin: new URL(`https://${m[1]}`), target: m[2] ?? '' };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`"${text}" is not a valid URL`, { hints: URL_HINTS });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`unsupported scheme ${url.protocol} in "${text}": use https:// or http://`, {
      hints: URL_HINTS,
    });
  }
  const origin = new URL(url.origin);
  if (url.pathname === '/' || url.pathname === '') return { origin };
  if (!isTunnelPath(url.pathname)) {
    throw new UsageError(`"${url.pathname}" is not a tunnel path; tunnels are ${HBONE_PREFIX}<port or name>`, {
      hints: URL_HINTS,
    });
  }
  const target = decodeURIComponent(url.pathname.slice(HBONE_PREFIX.length).replace(/\/+$/, ''));
  if (target === '') throw new UsageError(`"${text}" names no tunnel target`, { hints: URL_HINTS });
  return { origin, target };
}

/** `/_hbone/<target>`, keeping `:` readable. */
export function tunnelPath(target: string): string {
  return `${HBONE_PREFIX}${encodeURIComponent(target).replaceAll('%3A', ':')}`;
}

function port(text: string, spec: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 0 && n <= 65535)) throw new UsageError(`invalid local port "${text}" in -L ${spec}`);
  return n;
}

/**
 * `[addr:]localport:target`, where target is a port, a name or `host:port` (so `-L 2222:22`, `-L 0.0.0.0:8080:http`,
 * `-L 5432:db.internal:5432` as in ssh).
 */
export function parseForward(spec: string): ForwardSpec {
  const parts = spec.split(':');
  const isPort = (s: string | undefined) => s !== undefined && /^\d+$/.test(s);
  let bindHost = '127.0.0.1';
  let rest = parts;
  if (parts.length === 4 || (parts.length === 3 && !isPort(parts[0]))) {
    bindHost = parts[0] ?? '';
    rest = parts.slice(1);
  }
  const [local, ...target] = rest;
  if (local === undefined || target.length === 0 || target.some((t) => t === '') || bindHost === '') {
    throw new UsageError(`invalid -L ${spec}: expected [addr:]localport:target`, {
      hints: ['krun hbone -L 2222:22 https://SERVICE-URL'],
    });
  }
  return { bindHost, localPort: port(local, spec), target: target.join(':') };
}
