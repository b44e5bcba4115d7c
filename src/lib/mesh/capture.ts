// The outbound capture (sidecar mode, and Traffic Director with Envoy), applied as root before the proxy starts: the
// rules of iptables.ts for the configured ranges and ports and the nameservers of resolv.conf, in one
// `iptables-restore --noflush` call (all or nothing), and the IPv6 twin with ip6tables-restore when the kernel has
// IPv6 (an uncaptured IPv6 path would bypass the mesh, so its failure is an error too). resolv.conf itself is left
// alone: the DNS redirect happens in the kernel, as in an Istio Pod.
import { spawn } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KrunError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { RunConfig } from '../run/config.ts';
import { PROXY_UID } from './injector.ts';
import { type CaptureOptions, captureRules, nameservers, OUTBOUND_CAPTURE_PORT, OUTPUT_JUMP } from './iptables.ts';

export type CaptureConfig = Pick<
  RunConfig,
  'iptablesRestore' | 'outboundIpRangesInclude' | 'outboundIpRangesExclude' | 'outboundPortsExclude'
>;

/** The kernel's IPv6 addresses: present when the network namespace has IPv6. */
const IF_INET6 = '/proc/net/if_inet6';

/** ip6tables-restore of the same flavour and place as the iptables-restore given (iptables-legacy-restore too). */
export function ip6tablesRestoreOf(iptablesRestore: string): string {
  const name = basename(iptablesRestore).replace(/^iptables/, 'ip6tables');
  return iptablesRestore.includes('/') ? join(dirname(iptablesRestore), name) : name;
}

export class CaptureError extends KrunError {}

export interface AppliedCapture {
  /** The iptables-restore input applied. */
  readonly ipv4: string;
  /** The ip6tables-restore input applied; undefined when the kernel has no IPv6. */
  readonly ipv6: string | undefined;
}

/**
 * Applies the capture and returns the rules it applied. DNS to the nameservers of resolvConf goes to the DNS proxy;
 * extraExcluded adds never-captured CIDRs to the configured ones; env is iptables-restore's environment.
 */
export async function captureOutbound(
  config: CaptureConfig,
  resolvConf: string,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  extraExcluded: readonly string[] = [],
): Promise<AppliedCapture> {
  const resolv = await readFile(resolvConf, 'utf8').catch(() => '');
  const options: CaptureOptions = {
    includeRanges: config.outboundIpRangesInclude.value,
    excludeRanges: [...config.outboundIpRangesExclude.value, ...extraExcluded],
    excludePorts: config.outboundPortsExclude.value,
    proxyUid: PROXY_UID,
    proxyGid: PROXY_UID,
    dnsServers: nameservers(resolv),
  };
  const binary = config.iptablesRestore.value;
  const ipv4 = captureRules(options, 4);
  await apply(binary, ipv4, env);
  const hasIpv6 = await access(IF_INET6).then(
    () => true,
    () => false,
  );
  const binary6 = ip6tablesRestoreOf(binary);
  const ipv6 = hasIpv6 ? captureRules(options, 6) : undefined;
  if (ipv6) await apply(binary6, ipv6, env);
  log.info('applied the outbound capture (iptables)', {
    to: OUTBOUND_CAPTURE_PORT,
    iptablesRestore: binary,
    ip6tablesRestore: ipv6 ? binary6 : 'none: no IPv6 in this network namespace',
    resolvConf,
  });
  return { ipv4, ipv6 };
}

async function apply(binary: string, rules: string, env: Readonly<Record<string, string | undefined>>) {
  // A krun restarted in the same namespace finds its chains (declaring them flushes them) and its jump from OUTPUT,
  // which would be added twice: remove it first. Failing here only means it was not there.
  await run(binary, ['--noflush'], `*nat\n${OUTPUT_JUMP.replace('-A', '-D')}\nCOMMIT\n`, env);
  const failure = await run(binary, ['--noflush'], rules, env);
  if (failure) {
    throw new CaptureError(`can't apply the outbound capture: ${binary} ${failure}`, {
      hints: [
        'the capture needs root with CAP_NET_ADMIN, and iptables and ip6tables (nf_tables or legacy) in the kernel',
        'ISTIO_META_INTERCEPTION_MODE=NONE (whitebox) runs without capture',
      ],
    });
  }
}

/** Runs command with input on stdin; resolves with undefined on success, else why it failed. */
function run(
  command: string,
  args: string[],
  input: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.once('error', (e) => resolve(e.message));
    child.once('exit', (code, sig) =>
      resolve(code === 0 ? undefined : `exited with ${sig ?? code}${err.trim() ? `: ${err.trim()}` : ''}`),
    );
    child.stdin.on('error', () => {}); // a binary that exits at once: the exit status says why
    child.stdin.end(input);
  });
}
