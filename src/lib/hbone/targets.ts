// The tunnel allow-list: which local TCP endpoints a tunnel may reach, and by which names. A tunnel request names its
// target by `/_hbone/<port or name>` or by a CONNECT `:authority host:port`; nothing outside this table is dialled.
// The original krun dialled `PORT_<name>` values as-is, so the bare ports its own samples set (`PORT_grpc=8079`)
// failed; here a bare port always means 127.0.0.1:port.
import { type HostPort, parseHostPort } from '../net/address.ts';

export type TargetAddress = HostPort;

export interface Target extends TargetAddress {
  /** The name the table knows it by: `ssh`, `mtls`, `app` or the `<name>` of `PORT_<name>`. */
  readonly name: string;
}

export interface TargetTableOptions {
  /** The SSH debug server, reached as `/_hbone/22` (default 15022; `null` leaves it out). */
  readonly sshPort?: number | null;
  /** Envoy's inbound mTLS listener, reached as `/_hbone/15003` (default 15003; `null` leaves it out). */
  readonly mtlsPort?: number | null;
  /** The application port: reachable by its number, and what a mesh peer's CONNECT to `<this host>:<port>` means. */
  readonly appPort?: number;
  /** Named targets, e.g. from `PORT_<name>` variables: a bare port or `host:port`. */
  readonly named?: Readonly<Record<string, string>>;
  /**
   * Addresses that mean "this workload" in a CONNECT authority besides loopback (the instance's own IPs, its
   * service host name): `CONNECT <self>:<port>` reaches the local target listening on that port.
   */
  readonly selfHosts?: readonly string[];
}

export class TargetSpecError extends Error {}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || host.startsWith('127.');
}

export class TargetTable {
  readonly #byName = new Map<string, Target>();
  readonly #targets: Target[] = [];
  readonly #selfHosts: ReadonlySet<string>;

  constructor(options: TargetTableOptions = {}) {
    this.#selfHosts = new Set((options.selfHosts ?? []).map((h) => h.toLowerCase()));
    const sshPort = options.sshPort === undefined ? 15022 : options.sshPort;
    const mtlsPort = options.mtlsPort === undefined ? 15003 : options.mtlsPort;
    if (sshPort !== null) this.#add({ name: 'ssh', host: '127.0.0.1', port: sshPort }, ['22', 'ssh', String(sshPort)]);
    if (mtlsPort !== null) this.#add({ name: 'mtls', host: '127.0.0.1', port: mtlsPort }, [String(mtlsPort)]);
    if (options.appPort !== undefined) {
      this.#add({ name: 'app', host: '127.0.0.1', port: options.appPort }, [String(options.appPort)]);
    }
    for (const [name, spec] of Object.entries(options.named ?? {})) {
      if (!NAME.test(name)) throw new TargetSpecError(`invalid tunnel target name "${name}"`);
      const address = parseHostPort(spec.trim());
      if (!address) throw new TargetSpecError(`PORT_${name}="${spec}" is neither a port nor host:port`);
      this.#add({ name, ...address }, [name]);
    }
  }

  #add(target: Target, names: readonly string[]): void {
    this.#targets.push(target);
    for (const n of names) this.#byName.set(n, target);
  }

  /** Every allowed target, in the order they were configured. */
  list(): readonly Target[] {
    return this.#targets;
  }

  /**
   * The target for `/_hbone/<segment>`: a name (`22`, `15003`, `<name>`), or a port or `host:port` that
   * {@link byAuthority} allows.
   */
  byName(segment: string): Target | undefined {
    return this.#byName.get(segment) ?? this.byAuthority(segment);
  }

  /**
   * The target for a CONNECT authority: a configured `host:port` exactly, or `<loopback or self>:<port>` where a
   * local (loopback) target listens on that port. Anything else is not allowed.
   */
  byAuthority(authority: string): Target | undefined {
    const address = parseHostPort(authority);
    if (!address || !authority.includes(':')) return undefined;
    const exact = this.#targets.find((t) => t.host === address.host && t.port === address.port);
    if (exact) return exact;
    if (!isLoopback(address.host) && !this.#selfHosts.has(address.host)) return undefined;
    return this.#targets.find((t) => isLoopback(t.host) && t.port === address.port);
  }
}
