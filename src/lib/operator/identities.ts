// The operator's SSH identities, found as OpenSSH finds them: `-i FILE` only when given, else the agent
// (SSH_AUTH_SOCK) and then ~/.ssh/id_ed25519, id_ecdsa and id_rsa. Encrypted key files need the agent.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { AnyAuthMethod } from 'ssh2';
import type { Env } from '../context.ts';
import { KrunError, UsageError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';

export const DEFAULT_KEY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;

export interface Identities {
  /** ssh2 authentication methods, tried in order. */
  readonly methods: (username: string) => AnyAuthMethod[];
  /** What was found, for messages: `agent`, file paths. */
  readonly sources: readonly string[];
}

export interface IdentityOptions {
  readonly identityFile?: string | undefined;
  readonly env: Env;
  readonly log: Logger;
}

type Ssh2Key = import('ssh2').ParsedKey;

async function parse(path: string, required: boolean): Promise<Ssh2Key | undefined> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`can't read the SSH key ${path}: ${(err as Error).message}`);
  }
  const { utils } = (await import('ssh2')).default;
  const key = utils.parseKey(text);
  if (key instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(key.message);
    if (!required && encrypted) return undefined;
    throw new KrunError(`can't use the SSH key ${path}: ${key.message}`, {
      hints: encrypted ? [`load it into your agent: ssh-add ${path}`] : ['ssh-keygen -t ed25519'],
    });
  }
  return Array.isArray(key) ? key[0] : key;
}

export async function loadIdentities(options: IdentityOptions): Promise<Identities> {
  const home = options.env.HOME || homedir();
  const files: { path: string; key: Ssh2Key }[] = [];
  let agent: string | undefined;
  if (options.identityFile) {
    const key = await parse(options.identityFile, true);
    if (key) files.push({ path: options.identityFile, key });
  } else {
    agent = options.env.SSH_AUTH_SOCK || undefined;
    for (const name of DEFAULT_KEY_FILES) {
      const path = join(home, '.ssh', name);
      const key = await parse(path, false);
      if (key) files.push({ path, key });
    }
  }
  const sources = [...(agent ? ['agent'] : []), ...files.map((f) => f.path)];
  if (sources.length === 0) {
    throw new KrunError('no SSH key: no agent (SSH_AUTH_SOCK) and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa', {
      hints: ['ssh-keygen -t ed25519', '-i FILE'],
    });
  }
  options.log.debug('ssh identities', { sources });
  return {
    sources,
    methods: (username) => [
      ...(agent ? [{ type: 'agent' as const, username, agent }] : []),
      ...files.map((f) => ({ type: 'publickey' as const, username, key: f.key })),
    ],
  };
}
