// The headers a reverse proxy adds and removes: hop-by-hop headers (RFC 9110 §7.6.1) never cross it, the
// Forwarded (RFC 7239) and X-Forwarded-* chains get this hop appended, and x-forwarded-client-cert is dropped so a
// client cannot forge the identity a mesh proxy would vouch for.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'transfer-encoding',
  'upgrade',
  'te',
  'http2-settings',
]);

/** Headers never passed on, whatever the direction. */
const DROPPED = new Set(['x-forwarded-client-cert']);

export interface Hop {
  /** The address this hop received the request from. */
  readonly remoteAddress: string;
  /** `http` or `https`: how this hop was reached. */
  readonly proto: 'http' | 'https';
  /** The Host / :authority the client asked for. */
  readonly host?: string;
}

/** Names listed in a Connection header are hop-by-hop too. */
function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const value = headers.connection;
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(
    text
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ''),
  );
}

/** Copies end-to-end headers: no pseudo-headers, hop-by-hop headers or x-forwarded-client-cert. */
export function endToEndHeaders(headers: IncomingHttpHeaders | OutgoingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionTokens(headers as IncomingHttpHeaders);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase();
    if (value === undefined || key.startsWith(':') || HOP_BY_HOP.has(key) || DROPPED.has(key) || listed.has(key)) {
      continue;
    }
    out[key] = value;
  }
  return out;
}

function forwardedNode(address: string): string {
  // RFC 7239 §6: IPv6 addresses are bracketed and the value quoted.
  const bare = address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return bare.includes(':') ? `"[${bare}]"` : bare;
}

function quoteIfNeeded(value: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)
    ? value
    : `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

function joined(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/**
 * The request headers for the upstream: end-to-end headers, then this hop appended to X-Forwarded-For and
 * Forwarded; X-Forwarded-Proto and X-Forwarded-Host keep what an earlier proxy (Cloud Run's front end) said about
 * the original request and are set from this hop otherwise. `te: trailers` survives (gRPC needs it).
 */
export function proxyRequestHeaders(headers: IncomingHttpHeaders, hop: Hop): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers);
  const te = joined(headers.te);
  if (te && /(^|,)\s*trailers\s*(,|$)/i.test(te)) out.te = 'trailers';
  const client = hop.remoteAddress.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  const xff = joined(headers['x-forwarded-for']);
  out['x-forwarded-for'] = xff ? `${xff}, ${client}` : client;
  out['x-forwarded-proto'] = joined(headers['x-forwarded-proto']) ?? hop.proto;
  const host = hop.host ?? joined(headers[':authority']) ?? joined(headers.host);
  const xfh = joined(headers['x-forwarded-host']) ?? host;
  if (xfh) out['x-forwarded-host'] = xfh;
  const element = [
    `for=${forwardedNode(hop.remoteAddress)}`,
    host ? `host=${quoteIfNeeded(host)}` : '',
    `proto=${hop.proto}`,
  ]
    .filter((p) => p !== '')
    .join(';');
  const previous = joined(headers.forwarded);
  out.forwarded = previous ? `${previous}, ${element}` : element;
  return out;
}

/** Response headers for the client: end-to-end only (HTTP/2 forbids connection-specific headers outright). */
export function proxyResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return endToEndHeaders(headers);
}
