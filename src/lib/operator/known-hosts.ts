// Host keys pinned on first use, per target, in an OpenSSH known_hosts file of krun's own
// (`~/.config/krun/known_hosts`), so the stock ssh (UserKnownHostsFile + HostKeyAlias) and krun share the pins.
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Env } from '../context.ts';
import { TransportError } from '../errors.ts';

export function defaultKnownHostsFile(env: Env): string {
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(config, 'krun', 'known_hosts');
}

export function keyFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function keyType(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

export type HostKeyCheck =
  | { readonly ok: true; readonly added: boolean; readonly fingerprint: string }
  | { readonly ok: false; readonly error: TransportError };

/** Checks `blob` against the pins for `alias`; the first key seen for an alias is recorded. */
export async function checkHostKey(file: string, alias: string, blob: Buffer): Promise<HostKeyCheck> {
  const fingerprint = keyFingerprint(blob);
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const pinned: { line: number; blob: Buffer }[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const [hosts, , key] = raw.trim().split(/\s+/);
    if (!hosts || !key || hosts.startsWith('#')) continue;
    if (hosts.split(',').includes(alias)) pinned.push({ line: i + 1, blob: Buffer.from(key, 'base64') });
  }
  if (pinned.some((p) => p.blob.equals(blob))) return { ok: true, added: false, fingerprint };
  if (pinned.length > 0) {
    const known = pinned.map((p) => `${keyFingerprint(p.blob)} (line ${p.line})`).join(', ');
    return {
      ok: false,
      error: new TransportError(
        `HOST KEY MISMATCH for ${alias}: it presented ${fingerprint}, but ${file} has ${known}. Someone may be intercepting the connection, or the service's host key changed`,
        {
          hints: [
            `if the change is expected, forget the old key: ssh-keygen -R ${alias} -f ${file}`,
            'give every instance the same host key (KRUN_SSH_HOST_KEY or the sshdebug Secret) so it stays stable',
          ],
        },
      ),
    };
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await appendFile(file, `${alias} ${keyType(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
  return { ok: true, added: true, fingerprint };
}
