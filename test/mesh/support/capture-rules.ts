// What `iptables-save -t nat` prints (without its comment lines) once krun's capture is the only nat configuration:
// the rules krun generated, after the built-in chains' policies.
import { type CaptureOptions, captureRules } from '../../../src/lib/mesh/iptables.ts';

export function savedNat(options: CaptureOptions): string[] {
  const [table, ...rest] = captureRules(options).trimEnd().split('\n');
  const builtIn = ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'].map((c) => `:${c} ACCEPT [0:0]`);
  return [table ?? '', ...builtIn, ...rest];
}

/** The options `krun run` uses for a nameserver and OUTBOUND_PORTS_EXCLUDE. */
export function krunCapture(nameserver: string, excludePorts: readonly number[]): CaptureOptions {
  return { includeRanges: ['*'], excludePorts, proxyUid: 1337, proxyGid: 1337, dnsServers: [nameserver] };
}
