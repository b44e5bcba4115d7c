// What `iptables-save -t nat` prints (without its comment lines) once krun's capture is the only nat configuration:
// the rules krun generated, after the built-in chains' policies.
import { type CaptureOptions, captureRules, type IpFamily } from '../../../src/lib/mesh/iptables.ts';

export function savedNat(options: CaptureOptions, family: IpFamily = 4): string[] {
  const [table, ...rest] = captureRules(options, family).trimEnd().split('\n');
  const builtIn = ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'].map((c) => `:${c} ACCEPT [0:0]`);
  return [table ?? '', ...builtIn, ...rest];
}

/** The options `krun run` uses for the nameservers, OUTBOUND_PORTS_EXCLUDE and excluded CIDRs. */
export function krunCapture(
  nameservers: string | readonly string[],
  excludePorts: readonly number[],
  excludeRanges: readonly string[] = [],
): CaptureOptions {
  return {
    includeRanges: ['*'],
    excludeRanges,
    excludePorts,
    proxyUid: 1337,
    proxyGid: 1337,
    dnsServers: typeof nameservers === 'string' ? [nameservers] : nameservers,
  };
}
