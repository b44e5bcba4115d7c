// The audit trail of remote access: who opened which tunnel, who logged in to the SSH debug server with which key,
// what they ran and which files they touched. Every event is one log line with a stable `audit` field (the event
// name) that Cloud Logging can filter on, and optionally one JSON line appended to a file only krun can read.
// Never secrets or file contents: tokens are redacted like every log line, keys appear as fingerprints only.
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import type { Fields, Logger } from '../log/logger.ts';
import { redact } from '../log/redact.ts';

export type AuditEvent =
  | 'tunnel.open'
  | 'tunnel.close'
  | 'tunnel.refused'
  | 'ssh.auth.accept'
  | 'ssh.auth.reject'
  | 'ssh.auth.suppressed'
  | 'ssh.session.start'
  | 'ssh.session.end'
  | 'ssh.session.refused'
  | 'ssh.forward'
  | 'ssh.forward.refused'
  | 'ssh.forward.cancel'
  | 'sftp.open'
  | 'sftp.close'
  | 'sftp.remove'
  | 'sftp.rmdir'
  | 'sftp.rename'
  | 'sftp.mkdir'
  | 'sftp.setstat'
  | 'sftp.symlink';

/** Records events with some fields (the connection, the session) already bound. */
export interface AuditScope {
  record(event: AuditEvent, message: string, fields?: Fields, level?: 'info' | 'warn'): void;
  with(fields: Fields): AuditScope;
}

/** Who the HBONE layer says opened a tunnel, and who vouched for it. */
export interface Caller {
  readonly principal: string;
  /** `jwt`: krun verified the token itself; `cloud-run`: Cloud Run's front end did (IAM in front). */
  readonly verifiedBy: 'jwt' | 'cloud-run';
}

/** What an SSH connection learns about the tunnel that carried it. */
export interface TunnelLink {
  readonly conn: string;
  readonly caller?: Caller | undefined;
}

/**
 * Tunnels by the local address of their upstream socket: the SSH server sees that address as its peer, so it can
 * name the tunnel (and the caller) every connection came through. Both ends live in the same process.
 */
export class TunnelLinks {
  readonly #links = new Map<string, TunnelLink>();

  /** Registers a tunnel; the returned function forgets it. */
  add(localAddress: string, link: TunnelLink): () => void {
    this.#links.set(localAddress, link);
    return () => this.#links.delete(localAddress);
  }

  find(peerAddress: string): TunnelLink | undefined {
    return this.#links.get(peerAddress.replace(/^::ffff:/, ''));
  }
}

export interface Audit extends AuditScope {
  readonly tunnels: TunnelLinks;
  close(): void;
}

export interface AuditOptions {
  readonly log: Logger;
  /** Append every event to this file too (created with mode 0600). */
  readonly file?: string | undefined;
  readonly now?: () => Date;
}

/** A short random id naming a connection in every event about it. */
export function connectionId(): string {
  return randomBytes(6).toString('hex');
}

export function callerFields(caller: Caller | undefined): Fields {
  return caller ? { caller: caller.principal, callerVerifiedBy: caller.verifiedBy } : {};
}

export function createAudit(options: AuditOptions): Audit {
  const now = options.now ?? (() => new Date());
  let fd: number | undefined;
  if (options.file) {
    fd = openSync(options.file, 'a', 0o600);
    // An existing file keeps its mode on open: tighten it, as it holds who did what.
    fchmodSync(fd, 0o600);
  }
  let fileFailed = false;
  const toFile = (line: Record<string, unknown>) => {
    if (fd === undefined || fileFailed) return;
    try {
      writeSync(fd, `${JSON.stringify(redact(line))}\n`);
    } catch (err) {
      fileFailed = true;
      options.log.error('audit file write failed; events go to the log only', {
        file: options.file,
        error: (err as Error).message,
      });
    }
  };
  const scope = (bound: Fields): AuditScope => ({
    record(event, message, fields = {}, level = 'info') {
      const all = { audit: event, ...bound, ...fields };
      options.log[level](message, all);
      toFile({ time: now().toISOString(), message, ...all });
    },
    with: (fields) => scope({ ...bound, ...fields }),
  });
  return {
    ...scope({}),
    tunnels: new TunnelLinks(),
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
