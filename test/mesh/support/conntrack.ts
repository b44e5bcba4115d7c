// The kernel's connection tracking table of the current network namespace, as Envoy's SO_ORIGINAL_DST reads it:
// how a test shows where a redirected connection was going.
import { readFileSync } from 'node:fs';

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
      const pairs = words.filter((w) => /^(src|dst|sport|dport)=/.test(w)).map((w) => w.split('=') as [string, string]);
      const tuple = (from: number) => Object.fromEntries(pairs.slice(from, from + 4)) as Tracked['original'];
      return { proto: words[2] ?? '', original: tuple(0), reply: tuple(4) };
    });
}

/** The original destination host:port of a TCP connection accepted from peer. */
export function originalDestination(peer: {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}): string {
  const entry = tracked().find(
    (t) => t.proto === 'tcp' && t.original.src === peer.remoteAddress && t.original.sport === String(peer.remotePort),
  );
  return entry ? `${entry.original.dst}:${entry.original.dport}` : 'unknown';
}
