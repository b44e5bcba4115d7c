// The kernel's connection tracking table of the current network namespace, as Envoy's SO_ORIGINAL_DST reads it:
// how a test shows where a redirected connection was going.
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';

/** The short form of an address: the table prints IPv6 in full (fd00:0009:0000:…), sockets in short (fd00:9::1). */
function short(address: string | undefined): string | undefined {
  return address?.includes(':') ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

export interface Tracked {
  readonly proto: string;
  /** The tuple as sent: src, dst, sport, dport. */
  readonly original: Readonly<Record<'src' | 'dst' | 'sport' | 'dport', string>>;
  /** The tuple the answers come back with (after NAT). */
  readonly reply: Readonly<Record<'src' | 'dst' | 'sport' | 'dport', string>>;
}

export function tracked(): Tracked[] {
  return readFileSync('/proc/net/nf_conntrack', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const words = line.split(/\s+/);
      const pairs = words
        .filter((w) => /^(src|dst|sport|dport)=/.test(w))
        .map((w) => w.split('=') as [string, string])
        .map(([k, v]): [string, string] => [k, short(v) ?? v]);
      const tuple = (from: number) => Object.fromEntries(pairs.slice(from, from + 4)) as Tracked['original'];
      return { proto: words[2] ?? '', original: tuple(0), reply: tuple(4) };
    });
}

/** The original destination host:port ([host]:port for IPv6) of a TCP connection accepted from peer. */
export function originalDestination(peer: {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}): string {
  const entry = tracked().find(
    (t) =>
      t.proto === 'tcp' && t.original.src === short(peer.remoteAddress) && t.original.sport === String(peer.remotePort),
  );
  if (!entry) return 'unknown';
  const host = isIPv6(entry.original.dst) ? `[${entry.original.dst}]` : entry.original.dst;
  return `${host}:${entry.original.dport}`;
}
