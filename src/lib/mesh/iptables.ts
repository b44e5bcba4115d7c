// Outbound capture equivalent to `istio-iptables -p 15001 -u 1337 -g 1337 -m REDIRECT -i <ranges> -x <ranges>
// -o <ports>` (inbound left alone, as the original did), plus Istio's DNS capture: UDP and TCP port 53 to the
// nameservers of resolv.conf go to the agent's DNS proxy. One rule set per IP family (iptables and ip6tables), each
// with that family's ranges and nameservers. Generated as iptables-restore input for the nat table, in the canonical
// form iptables-save prints, so it can be checked as data, applied in one atomic call and compared after.
import { isIP } from 'node:net';

export const OUTBOUND_CAPTURE_PORT = 15001;
export const DNS_PROXY_PORT = 15053;
/** HBONE (15008), krun's HBONE (15009) and SSH debug (15022): never captured. */
export const ALWAYS_EXCLUDED_PORTS = [15008, 15009, 15022] as const;
/** The one rule outside krun's chains. */
export const OUTPUT_JUMP = '-A OUTPUT -j ISTIO_OUTPUT';

export type IpFamily = 4 | 6;

export interface CaptureOptions {
  /** CIDRs to capture (either family: each rule set takes its own); ['*'] captures everything. */
  readonly includeRanges: readonly string[];
  /** CIDRs never captured (istio-iptables' -x), such as the metadata server's 169.254.169.254/32. */
  readonly excludeRanges: readonly string[];
  readonly excludePorts: readonly number[];
  readonly proxyUid: number;
  readonly proxyGid: number;
  /**
   * DNS capture: the nameservers whose port 53 goes to the DNS proxy (an empty list captures port 53 to any
   * address: glibc then queries 127.0.0.1); undefined leaves DNS alone.
   */
  readonly dnsServers: readonly string[] | undefined;
}

/** The nameservers of a resolv.conf, both families, in order. */
export function nameservers(resolvConf: string): string[] {
  const servers: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const [key, value] = line
      .replace(/[#;].*/, '')
      .trim()
      .split(/\s+/);
    if (key === 'nameserver' && value && isIP(value) && !servers.includes(value)) servers.push(value);
  }
  return servers;
}

function familyOf(range: string): IpFamily {
  return isIP(range.split('/')[0] ?? '') === 6 ? 6 : 4;
}

function cidr(range: string): string {
  if (range.includes('/')) return range;
  return `${range}/${familyOf(range) === 6 ? 128 : 32}`;
}

/** The rules for one family (iptables-restore input for 4, ip6tables-restore input for 6). */
export function captureRules(o: CaptureOptions, family: IpFamily = 4): string {
  const mine = (ranges: readonly string[]) => ranges.filter((r) => familyOf(r) === family).map(cidr);
  const ports = [...new Set([...ALWAYS_EXCLUDED_PORTS, ...o.excludePorts])].sort((a, b) => a - b);
  // No nameserver at all: port 53 to any address (glibc then queries the loopback address).
  const dns = o.dnsServers?.length === 0 ? [''] : mine(o.dnsServers ?? []).map((d) => `-d ${d} `);
  const lines = [
    '*nat',
    ':ISTIO_OUTPUT - [0:0]',
    ':ISTIO_REDIRECT - [0:0]',
    OUTPUT_JUMP,
    // The proxy's own traffic (and the DNS proxy's upstream queries) leaves as it is.
    `-A ISTIO_OUTPUT -m owner --uid-owner ${o.proxyUid} -j RETURN`,
    `-A ISTIO_OUTPUT -m owner --gid-owner ${o.proxyGid} -j RETURN`,
    ...dns.flatMap((d) =>
      ['udp', 'tcp'].map(
        (p) => `-A ISTIO_OUTPUT ${d}-p ${p} -m ${p} --dport 53 -j REDIRECT --to-ports ${DNS_PROXY_PORT}`,
      ),
    ),
    `-A ISTIO_OUTPUT -d ${family === 6 ? '::1/128' : '127.0.0.1/32'} -j RETURN`,
    ...mine(o.excludeRanges).map((r) => `-A ISTIO_OUTPUT -d ${r} -j RETURN`),
    ...ports.map((p) => `-A ISTIO_OUTPUT -p tcp -m tcp --dport ${p} -j RETURN`),
  ];
  if (o.includeRanges.includes('*')) lines.push('-A ISTIO_OUTPUT -p tcp -j ISTIO_REDIRECT');
  else for (const range of mine(o.includeRanges)) lines.push(`-A ISTIO_OUTPUT -d ${range} -p tcp -j ISTIO_REDIRECT`);
  lines.push(
    '-A ISTIO_OUTPUT -j RETURN',
    `-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${OUTBOUND_CAPTURE_PORT}`,
    'COMMIT',
  );
  return `${lines.join('\n')}\n`;
}
