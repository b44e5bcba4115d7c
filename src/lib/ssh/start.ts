// `krun run`'s SSH debug server: gathers the key sources (SSH_AUTH, an authorized_keys file, the workload
// namespace's `sshdebug` Secret), stays off with a log line saying how to turn it on when there are none, and
// otherwise starts the server on 127.0.0.1. The Secret is re-read periodically, so keys can be added or revoked
// without a restart. ssh2 and the server code are loaded only when the server starts.
import { readFile } from 'node:fs/promises';
import type { Audit } from '../audit/audit.ts';
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { apiStatus, type KubeClient } from '../kube/client.ts';
import type { Logger } from '../log/logger.ts';
import type { RunConfig } from '../run/config.ts';
import { type AuthorizedEntry, parseAuthorizedKeys } from './authorized-keys.ts';

export const SECRET_NAME = 'sshdebug';
const SECRET_KEY_PREFIX = 'authorized_key_';

export interface SshDebug {
  readonly port: number;
  close(): Promise<void>;
}

interface SecretKeys {
  readonly entries: AuthorizedEntry[];
  readonly hostKey: string | undefined;
  readonly found: boolean;
}

/** The authorized keys and host key in the sshdebug Secret (absent Secret: none). */
export async function readSecretKeys(
  client: KubeClient,
  namespace: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<SecretKeys> {
  let data: Record<string, string> | undefined;
  try {
    const secret = await client.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${namespace}/secrets/${SECRET_NAME}`,
      signal ? { signal } : {},
    );
    data = secret.data ?? {};
  } catch (err) {
    if (apiStatus(err) === 404) return { entries: [], hostKey: undefined, found: false };
    throw err;
  }
  const entries: AuthorizedEntry[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (!key.startsWith(SECRET_KEY_PREFIX)) continue;
    const parsed = parseAuthorizedKeys(Buffer.from(value, 'base64').toString('utf8'), `secret ${SECRET_NAME}/${key}`);
    for (const e of parsed.errors) log.warn('ignored an authorized key', { error: e });
    entries.push(...parsed.entries);
  }
  const hostKey = data.id_ecdsa ? Buffer.from(data.id_ecdsa, 'base64').toString('utf8') : undefined;
  return { entries, hostKey, found: true };
}

async function localEntries(config: RunConfig, log: Logger): Promise<AuthorizedEntry[]> {
  const entries: AuthorizedEntry[] = [];
  const add = (text: string, source: string) => {
    const parsed = parseAuthorizedKeys(text, source);
    for (const e of parsed.errors) log.warn('ignored an authorized key', { error: e });
    entries.push(...parsed.entries);
  };
  if (config.sshAuth.value) add(config.sshAuth.value, config.sshAuth.source);
  const file = config.sshAuthorizedKeys.value;
  if (file) {
    try {
      add(await readFile(file, 'utf8'), `file ${file}`);
    } catch (err) {
      throw new UsageError(`KRUN_SSH_AUTHORIZED_KEYS=${file} can't be read: ${(err as Error).message}`);
    }
  }
  return entries;
}

export async function startSshDebug(
  config: RunConfig,
  ctx: KrunContext,
  client: KubeClient | undefined,
  env: Readonly<Record<string, string>>,
  audit: Audit,
): Promise<SshDebug | undefined> {
  const log = ctx.log.with({ component: 'ssh' });
  const port = config.sshPort.value;
  if (port === undefined) {
    log.info('SSH debug server off', { via: config.sshPort.source });
    return undefined;
  }
  const namespace = config.namespace.value;
  const local = await localEntries(config, log);
  let secret: SecretKeys = { entries: [], hostKey: undefined, found: false };
  if (client) {
    try {
      secret = await readSecretKeys(client, namespace, log, ctx.signal);
    } catch (err) {
      log.warn(`can't read Secret ${namespace}/${SECRET_NAME}; using the other key sources`, {
        error: (err as Error).message,
      });
    }
  }
  if (local.length === 0 && secret.entries.length === 0) {
    log.info(
      `SSH debug server off: no authorized keys (set SSH_AUTH or KRUN_SSH_AUTHORIZED_KEYS${client ? `, or create Secret ${namespace}/${SECRET_NAME} with authorized_key_<name> keys` : ''})`,
    );
    return undefined;
  }
  let current: readonly AuthorizedEntry[] = [...local, ...secret.entries];
  const ssh2 = (await import('ssh2')).default;
  const { loadHostKey } = await import('./host-key.ts');
  const { startSshServer } = await import('./server.ts');
  const { findPtyLauncher } = await import('./pty-helper.ts');
  const hostKey = await loadHostKey(ssh2, {
    file: config.sshHostKey.value,
    secretKey: secret.hostKey,
    baseDir: config.baseDir.value,
  });
  const pty = findPtyLauncher();
  const recordDir = config.sshRecordDir.value;
  const server = await startSshServer({
    listen: { host: '127.0.0.1', port },
    hostKey,
    authorized: () => current,
    env,
    cwd: ctx.cwd,
    log,
    audit,
    recording: recordDir
      ? { dir: recordDir, input: config.sshRecordInput.value, maxBytes: config.sshRecordMaxBytes.value }
      : undefined,
    pty,
  });
  log.info('SSH debug server listening', {
    address: `127.0.0.1:${server.address.port}`,
    hostKey: hostKey.fingerprint,
    hostKeySource: hostKey.source,
    keys: current.length,
    pty: pty?.name ?? 'none',
    recording: recordDir ? `${recordDir}${config.sshRecordInput.value ? ' (with input)' : ''}` : 'off',
  });
  // One re-read at a time: the next is scheduled when the previous one has finished, however slow the API server.
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const resync = (c: KubeClient) => {
    timer = setTimeout(() => {
      readSecretKeys(c, namespace, log, ctx.signal)
        .then(
          (fresh) => {
            const before = current.map((e) => e.fingerprint).join();
            current = [...local, ...fresh.entries];
            if (current.map((e) => e.fingerprint).join() !== before) {
              log.info('SSH authorized keys changed', { keys: current.length, secretFound: fresh.found });
            }
          },
          (err: Error) => log.warn(`can't re-read Secret ${namespace}/${SECRET_NAME}`, { error: err.message }),
        )
        .finally(() => {
          if (!closed) resync(c);
        });
    }, config.sshResyncIntervalSeconds.value * 1000);
    timer.unref();
  };
  if (client) resync(client);
  return {
    port: server.address.port,
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await server.close();
    },
  };
}
