// The SSH debug server: ssh2's protocol engine on a loopback-only listener that krun owns, so every limit is
// enforced before ssh2 spends work on a connection: a cap on connections still authenticating, a login grace
// time, a cap on authentication requests per connection, an idle timeout and a cap on concurrent sessions.
// Logins, sessions, file operations and forwards are audit events carrying the connection id of the HBONE tunnel
// that carried them (and so the caller it verified). Failed logins are recorded at a bounded rate, so a flood
// costs neither memory nor log volume.
import { type AddressInfo, createServer, type Socket } from 'node:net';
import type { AuthContext, Connection, Server } from 'ssh2';
import { type Audit, type AuditScope, callerFields, connectionId, createAudit } from '../audit/audit.ts';
import { UsageError } from '../errors.ts';
import type { Fields, Logger } from '../log/logger.ts';
import { coalesceWrites } from '../net/coalesce.ts';
import { listenOn } from '../net/listen.ts';
import { transportAlgorithms } from './algorithms.ts';
import { decide, type Identity } from './auth.ts';
import type { AuthorizedEntry } from './authorized-keys.ts';
import { findShell } from './command.ts';
import { type ForwardPolicy, handleDirectTcpip, RemoteForwards } from './forward.ts';
import type { HostKey } from './host-key.ts';
import type { PtyLauncher } from './pty.ts';
import type { RecordingPolicy } from './recording.ts';
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
  /** Where audit events go (default: the log) and how tunnels are found; shared with the HBONE server. */
  readonly audit?: Audit;
  /** Record PTY sessions (asciinema v2 files) under this policy. */
  readonly recording?: RecordingPolicy | undefined;
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
  const audit = options.audit ?? createAudit({ log });
  const now = options.now ?? Date.now;
  const shell = options.shell ?? findShell();
  const failures = failureLog(audit, limits.failureLogsPerMinute, now);
  const sockets = new Set<Socket>();
  const onReady = new Map<string, () => void>();
  let unauthenticated = 0;
  let sessions = 0;

  const ssh: Server = new Ssh2Server({
    hostKeys: [options.hostKey.privateKey],
    ident: 'krun',
    algorithms: transportAlgorithms(),
  });
  ssh.on('connection', (client: Connection, info) => {
    const from = `${info.ip}:${info.port}`;
    // The tunnel that carried this connection names it; a connection from elsewhere on loopback gets its own id.
    const link = audit.tunnels.find(from);
    const conn = link?.conn ?? connectionId();
    const connAudit = audit.with({ conn, ...callerFields(link?.caller), from });
    let identity: Identity | undefined;
    let user = '';
    let requests = 0;
    let sessionNumber = 0;
    client.on('error', (err) => log.debug('ssh connection error', { from, error: err.message }));
    client.on('authentication', (ctx: AuthContext) => {
      if (++requests > limits.maxAuthRequests) {
        failures.record(connAudit, {
          user: ctx.username,
          method: ctx.method,
          reason: 'too many authentication attempts',
        });
        ctx.reject([]);
        client.end();
        return;
      }
      if (ctx.method !== 'publickey') {
        if (ctx.method !== 'none') {
          failures.record(connAudit, {
            user: ctx.username,
            method: ctx.method,
            reason: `${ctx.method} authentication is refused`,
          });
        }
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
        failures.record(connAudit, {
          user: ctx.username,
          method: 'publickey',
          reason: decision.reason,
          ...keyFields(decision),
          signed: ctx.signature !== undefined,
        });
        return ctx.reject(['publickey']);
      }
      if (ctx.signature) {
        identity = decision.identity;
        user = ctx.username;
        connAudit.record('ssh.auth.accept', 'ssh login', {
          user,
          method: 'publickey',
          ...keyFields(identity),
          via: identity.source,
        });
      }
      ctx.accept();
    });
    client.on('ready', () => {
      onReady.get(from)?.();
      const who = identity;
      if (!who) return client.end();
      const userAudit = connAudit.with({ user, ...keyFields(who) });
      const forwards = new RemoteForwards(client, who, options.forward, userAudit);
      client.on('close', () => forwards.closeAll());
      client.on('session', (accept, reject) => {
        const session = ++sessionNumber;
        const sessionAudit = userAudit.with({ session });
        if (sessions >= limits.maxSessions) {
          sessionAudit.record(
            'ssh.session.refused',
            'ssh session refused: too many sessions',
            { limit: limits.maxSessions },
            'warn',
          );
          return reject();
        }
        sessions++;
        handleSession(accept(), {
          identity: who,
          audit: sessionAudit,
          name: `${conn}-${session}`,
          recording: options.recording,
          env: options.env,
          cwd: options.cwd,
          shell,
          pty: options.pty,
          sftp: (acceptSftp, scope) => serveSftp(acceptSftp, { cwd: options.cwd, audit: scope }),
          done: () => {
            sessions--;
          },
          now,
        });
      });
      client.on('tcpip', (accept, reject, info) =>
        handleDirectTcpip(accept, reject, info, who, options.forward, userAudit),
      );
      client.on('request', (accept, reject, name, info) => forwards.request(accept, reject, name, info));
    });
  });

  // No Nagle: SFTP answers are small packets, and each waiting for the peer's delayed ACK (40 ms) made `krun cp`
  // with few requests in flight crawl.
  const server = createServer({ noDelay: true }, (socket) => {
    if (unauthenticated >= limits.maxUnauthenticated) {
      failures.record(audit.with({ from: `${socket.remoteAddress}:${socket.remotePort}` }), {
        reason: 'too many connections authenticating',
      });
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

/** The key as audit fields: its fingerprint, and a certificate's key id and principals. */
function keyFields(k: { fingerprint?: string; keyId?: string; principals?: readonly string[] }): Fields {
  return {
    ...(k.fingerprint === undefined ? {} : { key: k.fingerprint }),
    ...(k.keyId === undefined ? {} : { keyId: k.keyId }),
    ...(k.principals === undefined ? {} : { principals: k.principals }),
  };
}

/** Records failed logins at most `perMinute` times a minute; the rest are counted and summarised. */
function failureLog(audit: AuditScope, perMinute: number, now: () => number) {
  let windowStart = now();
  let logged = 0;
  let suppressed = 0;
  const flush = () => {
    if (suppressed > 0) {
      audit.record('ssh.auth.suppressed', 'ssh login failures not logged individually', { count: suppressed }, 'warn');
    }
    suppressed = 0;
  };
  return {
    record(scope: AuditScope, fields: Fields) {
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
      scope.record('ssh.auth.reject', 'ssh login refused', fields, 'warn');
    },
    flush,
  };
}
