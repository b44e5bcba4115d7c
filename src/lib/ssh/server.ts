// The SSH debug server: ssh2's protocol engine on a loopback-only listener that krun owns, so every limit is
// enforced before ssh2 spends work on a connection: a cap on connections still authenticating, a login grace
// time, a cap on authentication requests per connection, an idle timeout and a cap on concurrent sessions.
// Failed logins are logged at a bounded rate, so a flood costs neither memory nor log volume.
import { type AddressInfo, createServer, type Socket } from 'node:net';
import type { AuthContext, Connection, Server } from 'ssh2';
import { UsageError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { coalesceWrites } from '../net/coalesce.ts';
import { listenOn } from '../net/listen.ts';
import { decide, type Identity } from './auth.ts';
import type { AuthorizedEntry } from './authorized-keys.ts';
import { findShell } from './command.ts';
import { type ForwardPolicy, handleDirectTcpip, RemoteForwards } from './forward.ts';
import type { HostKey } from './host-key.ts';
import type { PtyLauncher } from './pty.ts';
import { handleSession } from './session.ts';
import { serveSftp } from './sftp.ts';

export interface SshLimits {
  /** Close a connection after this long without traffic (default 30 minutes). */
  readonly idleTimeoutMs: number;
  /** Concurrent session channels across all connections (default 10). */
  readonly maxSessions: number;
  /** Connections still authenticating (default 8); more are closed at once. */
  readonly maxUnauthenticated: number;
  /** Time allowed to authenticate (default 30 s). */
  readonly loginGraceMs: number;
  /** Authentication requests per connection, key queries included (default 20). */
  readonly maxAuthRequests: number;
  /** Failed-login log lines per minute (default 10); the rest are counted in a summary line. */
  readonly failureLogsPerMinute: number;
}

export const DEFAULT_LIMITS: SshLimits = {
  idleTimeoutMs: 30 * 60_000,
  maxSessions: 10,
  maxUnauthenticated: 8,
  loginGraceMs: 30_000,
  maxAuthRequests: 20,
  failureLogsPerMinute: 10,
};

export interface SshServerOptions {
  /** Loopback only: the server is reached through the HBONE tunnel, never directly. */
  readonly listen: { readonly host: string; readonly port: number };
  readonly hostKey: HostKey;
  /** The current authorized entries; called on every attempt, so key sources can change while running. */
  readonly authorized: () => readonly AuthorizedEntry[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly log: Logger;
  readonly limits?: Partial<SshLimits>;
  readonly forward?: ForwardPolicy;
  readonly pty?: PtyLauncher | undefined;
  /** Defaults to the first of bash, sh that exists. */
  readonly shell?: string | undefined;
  readonly now?: () => number;
}

export interface SshServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startSshServer(options: SshServerOptions): Promise<SshServer> {
  if (!LOOPBACK.test(options.listen.host)) {
    throw new UsageError(`the SSH debug server listens on loopback only, not ${options.listen.host}`);
  }
  const { Server: Ssh2Server } = (await import('ssh2')).default;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log;
  const now = options.now ?? Date.now;
  const shell = options.shell ?? findShell();
  const failures = failureLog(log, limits.failureLogsPerMinute, now);
  const sockets = new Set<Socket>();
  const onReady = new Map<string, () => void>();
  let unauthenticated = 0;
  let sessions = 0;

  const ssh: Server = new Ssh2Server({ hostKeys: [options.hostKey.privateKey], ident: 'krun' });
  ssh.on('connection', (client: Connection, info) => {
    const from = `${info.ip}:${info.port}`;
    let identity: Identity | undefined;
    let requests = 0;
    client.on('error', (err) => log.debug('ssh connection error', { from, error: err.message }));
    client.on('authentication', (ctx: AuthContext) => {
      if (++requests > limits.maxAuthRequests) {
        failures.record(from, ctx.username, 'too many authentication attempts');
        ctx.reject([]);
        client.end();
        return;
      }
      if (ctx.method !== 'publickey') {
        if (ctx.method !== 'none') failures.record(from, ctx.username, `${ctx.method} authentication is refused`);
        return ctx.reject(['publickey']);
      }
      const decision = decide(
        options.authorized(),
        {
          user: ctx.username,
          algo: ctx.key.algo,
          keyBlob: ctx.key.data,
          signature: ctx.signature,
          signed: ctx.blob,
          hashAlgo: ctx.hashAlgo,
        },
        now() / 1000,
      );
      if (!decision.ok) {
        failures.record(from, ctx.username, decision.reason, decision.fingerprint);
        return ctx.reject(['publickey']);
      }
      if (ctx.signature) {
        identity = decision.identity;
        log.info('ssh login', {
          who: identity.fingerprint,
          ...(identity.keyId === undefined ? {} : { keyId: identity.keyId }),
          user: ctx.username,
          from,
          via: identity.source,
        });
      }
      ctx.accept();
    });
    client.on('ready', () => {
      onReady.get(from)?.();
      const who = identity;
      if (!who) return client.end();
      const forwards = new RemoteForwards(client, who, options.forward, log);
      client.on('close', () => forwards.closeAll());
      client.on('session', (accept, reject) => {
        if (sessions >= limits.maxSessions) {
          log.warn('ssh session refused: too many sessions', { who: who.fingerprint, limit: limits.maxSessions });
          return reject();
        }
        sessions++;
        handleSession(accept(), {
          identity: who,
          user: 'root',
          from,
          env: options.env,
          cwd: options.cwd,
          shell,
          pty: options.pty,
          log,
          sftp: (acceptSftp) => serveSftp(acceptSftp, { cwd: options.cwd, log }),
          done: () => {
            sessions--;
          },
        });
      });
      client.on('tcpip', (accept, reject, info) => handleDirectTcpip(accept, reject, info, who, options.forward, log));
      client.on('request', (accept, reject, name, info) => forwards.request(accept, reject, name, info));
    });
  });

  // No Nagle: SFTP answers are small packets, and each waiting for the peer's delayed ACK (40 ms) made `krun cp`
  // with few requests in flight crawl.
  const server = createServer({ noDelay: true }, (socket) => {
    if (unauthenticated >= limits.maxUnauthenticated) {
      failures.record(`${socket.remoteAddress}:${socket.remotePort}`, '', 'too many connections authenticating');
      socket.destroy();
      return;
    }
    sockets.add(socket);
    unauthenticated++;
    let authenticating = true;
    const authenticated = () => {
      if (!authenticating) return;
      authenticating = false;
      unauthenticated--;
      clearTimeout(grace);
    };
    const grace = setTimeout(() => socket.destroy(), limits.loginGraceMs);
    socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
    socket.once('close', () => {
      authenticated();
      sockets.delete(socket);
    });
    socket.on('error', () => {});
    // ssh2 names a connection by its peer address: that is how its 'ready' finds this socket's bookkeeping.
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    onReady.set(peer, authenticated);
    socket.once('close', () => onReady.delete(peer));
    // ssh2 writes each SSH packet in pieces (length, body, tag): one writev per loop turn instead.
    ssh.injectSocket(coalesceWrites(socket));
  });
  const address = await listenOn(server, options.listen.port, options.listen.host);
  return {
    address,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      failures.flush();
    },
  };
}

/** Logs failed logins at most `perMinute` times a minute; the rest are counted and summarised. */
function failureLog(log: Logger, perMinute: number, now: () => number) {
  let windowStart = now();
  let logged = 0;
  let suppressed = 0;
  const flush = () => {
    if (suppressed > 0) log.warn('ssh login failures not logged individually', { count: suppressed });
    suppressed = 0;
  };
  return {
    record(from: string, user: string, reason: string, fingerprint?: string) {
      if (now() - windowStart >= 60_000) {
        flush();
        windowStart = now();
        logged = 0;
      }
      if (logged >= perMinute) {
        suppressed++;
        return;
      }
      logged++;
      log.warn('ssh login refused', { from, user, reason, ...(fingerprint ? { key: fingerprint } : {}) });
    },
    flush,
  };
}
