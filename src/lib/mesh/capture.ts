// Sidecar mode's outbound capture, applied as root before the agent starts: the rules of iptables.ts for the
// configured ranges and ports and the nameservers of resolv.conf, in one `iptables-restore --noflush` call (all or
// nothing). resolv.conf itself is left alone: the DNS redirect happens in the kernel, as in an Istio Pod.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { KrunError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { RunConfig } from '../run/config.ts';
import { PROXY_UID } from './injector.ts';
import { captureRules, nameservers, OUTBOUND_CAPTURE_PORT, OUTPUT_JUMP } from './iptables.ts';

export type CaptureConfig = Pick<RunConfig, 'iptablesRestore' | 'outboundIpRangesInclude' | 'outboundPortsExclude'>;

export class CaptureError extends KrunError {}

/**
 * Applies the capture and returns the rules it applied. DNS to the nameservers of resolvConf goes to the agent's DNS
 * proxy; env is iptables-restore's environment.
 */
export async function captureOutbound(
  config: CaptureConfig,
  resolvConf: string,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
): Promise<string> {
  const binary = config.iptablesRestore.value;
  const resolv = await readFile(resolvConf, 'utf8').catch(() => '');
  const rules = captureRules({
    includeRanges: config.outboundIpRangesInclude.value,
    excludePorts: config.outboundPortsExclude.value,
    proxyUid: PROXY_UID,
    proxyGid: PROXY_UID,
    dnsServers: nameservers(resolv),
  });
  // A krun restarted in the same namespace finds its chains (declaring them flushes them) and its jump from OUTPUT,
  // which would be added twice: remove it first. Failing here only means it was not there.
  await run(binary, ['--noflush'], `*nat\n${OUTPUT_JUMP.replace('-A', '-D')}\nCOMMIT\n`, env);
  const failure = await run(binary, ['--noflush'], rules, env);
  if (failure) {
    throw new CaptureError(`can't apply the outbound capture: ${binary} ${failure}`, {
      hints: [
        'sidecar mode needs root with CAP_NET_ADMIN and iptables (nf_tables or legacy) in the kernel',
        'ISTIO_META_INTERCEPTION_MODE=NONE (whitebox) runs without capture',
      ],
    });
  }
  log.info('applied the outbound capture (iptables)', {
    to: OUTBOUND_CAPTURE_PORT,
    iptablesRestore: binary,
    resolvConf,
  });
  return rules;
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
