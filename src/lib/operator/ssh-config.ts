// `krun ssh-config [TARGET…]`: OpenSSH `Host` entries (like `gcloud compute config-ssh`) whose ProxyCommand is
// `krun hbone`, sharing krun's pinned host keys, so ssh, scp, rsync -e ssh and editors' remote modes work directly.
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KrunContext } from '../context.ts';
import { defaultKnownHostsFile } from './known-hosts.ts';
import { operatorGoogleAuth, resolveTarget, type TargetOptions } from './target.ts';
import { SSH_TARGET } from './tunnel.ts';

export interface SshConfigOptions extends TargetOptions {
  readonly knownHostsFile?: string | undefined;
  /** The command that runs krun (default: this node and this script, or this executable, as absolute paths). */
  readonly krun?: readonly string[];
}

/** This node and this script; a standalone executable (dist-bundle/krun) is its own argv[1]. */
function selfCommand(): string[] {
  const script = process.argv[1];
  return script && script !== process.execPath ? [process.execPath, script] : [process.execPath];
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `"${s.replaceAll('"', '\\"')}"`);

export async function sshConfig(
  targets: readonly string[],
  options: SshConfigOptions,
  ctx: KrunContext,
): Promise<string> {
  const krun = options.krun ?? selfCommand();
  const knownHosts = options.knownHostsFile ?? defaultKnownHostsFile(ctx.env);
  // OpenSSH records new host keys there, but creates no directory.
  await mkdir(dirname(knownHosts), { recursive: true, mode: 0o700 });
  const entries: string[] = [];
  const auth = operatorGoogleAuth(options, ctx);
  for (const input of targets) {
    const t = await resolveTarget(input, options, ctx, { auth });
    const alias = `krun.${t.service ? t.service.name : t.origin.hostname}`;
    entries.push(
      [
        `Host ${alias}`,
        `  HostName ${t.origin.hostname}`,
        '  User root',
        `  ProxyCommand ${[...krun, 'hbone', `${t.origin.origin}/_hbone/${SSH_TARGET}`].map(quote).join(' ')}`,
        `  HostKeyAlias ${t.hostAlias}`,
        `  UserKnownHostsFile ${quote(knownHosts)}`,
        '  StrictHostKeyChecking accept-new',
        '',
      ].join('\n'),
    );
  }
  return entries.join('\n');
}
