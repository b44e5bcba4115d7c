// The server's host key: stable across restarts so operators' known_hosts stay valid (the original generated a new
// one at every start, which forced StrictHostKeyChecking=no). Taken from the configured file, else from the
// sshdebug Secret, else generated once and kept under the base dir with mode 0600.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.ts';
import { writeFileAtomic } from '../fs/atomic-file.ts';
import { fingerprint } from './keys.ts';

/** Where a generated host key is kept, relative to the base dir. */
export const GENERATED_HOST_KEY = 'var/lib/krun/ssh/ssh_host_ed25519_key';

export interface HostKey {
  /** The private key text (OpenSSH or PEM), as ssh2 takes it. */
  readonly privateKey: string;
  readonly fingerprint: string;
  /** `file <path>`, `secret sshdebug/id_ecdsa`, `generated <path>` or `kept <path>`. */
  readonly source: string;
}

export interface HostKeyOptions {
  readonly file?: string | undefined;
  readonly secretKey?: string | undefined;
  readonly baseDir: string;
}

type Ssh2 = typeof import('ssh2');

function describe(ssh2: Ssh2, privateKey: string, source: string): HostKey {
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || !key.isPrivateKey()) {
    const why = key instanceof Error ? key.message : 'not a private key';
    throw new UsageError(`the SSH host key from ${source} can't be used: ${why}`, {
      hints: ['give an unencrypted OpenSSH or PEM private key (ssh-keygen -t ed25519 -N "" -f host_key)'],
    });
  }
  return { privateKey, fingerprint: fingerprint(key.getPublicSSH()), source };
}

export async function loadHostKey(ssh2: Ssh2, options: HostKeyOptions): Promise<HostKey> {
  if (options.file) {
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (err) {
      throw new UsageError(`KRUN_SSH_HOST_KEY=${options.file} can't be read: ${(err as Error).message}`);
    }
    return describe(ssh2, text, `file ${options.file}`);
  }
  if (options.secretKey) return describe(ssh2, options.secretKey, 'secret sshdebug/id_ecdsa');
  const path = join(options.baseDir, GENERATED_HOST_KEY);
  const kept = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (kept !== undefined) return describe(ssh2, kept, `kept ${path}`);
  const pair = ssh2.utils.generateKeyPairSync('ed25519');
  await writeFileAtomic(path, pair.private, 0o600);
  return describe(ssh2, pair.private, `generated ${path}`);
}
