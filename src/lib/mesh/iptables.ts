// Outbound capture equivalent to `istio-iptables -p 15001 -u 1337 -g 1337 -m REDIRECT -i <ranges> -o <ports>`
// (inbound left alone, as the original did), plus the DNS redirect to the agent's DNS proxy. Generated as
// iptables-restore input for the nat table, so it can be checked as data and applied in one atomic call.

export const OUTBOUND_CAPTURE_PORT = 15001;
export const DNS_PROXY_PORT = 15053;
/** HBONE (15008), krun's HBONE (15009) and SSH debug (15022): never captured. */
export const ALWAYS_EXCLUDED_PORTS = [15008, 15009, 15022] as const;

export interface CaptureOptions {
  /** CIDRs to capture; ['*'] captures everything. */
  readonly includeRanges: readonly string[];
  readonly excludePorts: readonly number[];
  readonly proxyUid: number;
  readonly proxyGid: number;
  readonly dnsCapture: boolean;
}

export function captureRules(o: CaptureOptions): string {
  const ports = [...new Set([...ALWAYS_EXCLUDED_PORTS, ...o.excludePorts])].sort((a, b) => a - b);
  const lines = [
    '*nat',
    ':ISTIO_OUTPUT - [0:0]',
    ':ISTIO_REDIRECT - [0:0]',
    `-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${OUTBOUND_CAPTURE_PORT}`,
    '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
    `-A ISTIO_OUTPUT -m owner --uid-owner ${o.proxyUid} -j RETURN`,
    `-A ISTIO_OUTPUT -m owner --gid-owner ${o.proxyGid} -j RETURN`,
    '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    ...ports.map((p) => `-A ISTIO_OUTPUT -p tcp --dport ${p} -j RETURN`),
  ];
  if (o.includeRanges.includes('*')) lines.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  else for (const cidr of o.includeRanges) lines.push(`-A ISTIO_OUTPUT -d ${cidr} -j ISTIO_REDIRECT`);
  lines.push('-A ISTIO_OUTPUT -j RETURN');
  if (o.dnsCapture) {
    lines.push(
      `-A OUTPUT -p udp --dport 53 -m owner --uid-owner ${o.proxyUid} -j RETURN`,
      `-A OUTPUT -p udp --dport 53 -m owner --gid-owner ${o.proxyGid} -j RETURN`,
      `-A OUTPUT -p udp --dport 53 -j REDIRECT --to-ports ${DNS_PROXY_PORT}`,
    );
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}
