// Outbound capture equivalent to `istio-iptables -p 15001 -u 1337 -g 1337 -m REDIRECT -i <ranges> -o <ports>`
// (inbound left alone, as the original did), plus Istio's DNS capture: UDP and TCP port 53 to the nameservers of
// resolv.conf go to the agent's DNS proxy. Generated as iptables-restore input for the nat table, in the canonical
// form iptables-save prints, so it can be checked as data, applied in one atomic call and compared after.
import { isIPv4 } from 'node:net';

export const OUTBOUND_CAPTURE_PORT = 15001;
export const DNS_PROXY_PORT = 15053;
/** HBONE (15008), krun's HBONE (15009) and SSH debug (15022): never captured. */
export const ALWAYS_EXCLUDED_PORTS = [15008, 15009, 15022] as const;
/** The one rule outside krun's chains. */
export const OUTPUT_JUMP = '-A OUTPUT -j ISTIO_OUTPUT';

export interface CaptureOptions {
  /** CIDRs to capture; ['*'] captures everything. */
  readonly includeRanges: readonly string[];
  readonly excludePorts: readonly number[];
  readonly proxyUid: number;
  readonly proxyGid: number;
  /**
   * DNS capture: the nameservers whose port 53 goes to the DNS proxy (an empty list captures port 53 to any
   * address: glibc then queries 127.0.0.1); undefined leaves DNS alone.
   */
  readonly dnsServers: readonly string[] | undefined;
}

/** The IPv4 nameservers of a resolv.conf (the rules are IPv4 only). */
export function nameservers(resolvConf: string): string[] {
  const servers: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const [key, value] = line
      .replace(/[#;].*/, '')
      .trim()
      .split(/\s+/);
    if (key === 'nameserver' && value && isIPv4(value) && !servers.includes(value)) servers.push(value);
  }
  return servers;
}

function cidr(range: string): string {
  return range.includes('/') ? range : `${range}/32`;
}

export function captureRules(o: CaptureOptions): string {
  const ports = [...new Set([...ALWAYS_EXCLUDED_PORTS, ...o.excludePorts])].sort((a, b) => a - b);
  const dns = (o.dnsServers ?? []).map((s) => `-d ${cidr(s)} `);
  if (o.dnsServers?.length === 0) dns.push('');
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
    '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    ...ports.map((p) => `-A ISTIO_OUTPUT -p tcp -m tcp --dport ${p} -j RETURN`),
  ];
  if (o.includeRanges.includes('*')) lines.push('-A ISTIO_OUTPUT -p tcp -j ISTIO_REDIRECT');
  else for (const range of o.includeRanges) lines.push(`-A ISTIO_OUTPUT -d ${cidr(range)} -p tcp -j ISTIO_REDIRECT`);
  lines.push(
    '-A ISTIO_OUTPUT -j RETURN',
    `-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${OUTBOUND_CAPTURE_PORT}`,
    'COMMIT',
  );
  return `${lines.join('\n')}\n`;
}
