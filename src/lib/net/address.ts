// host:port addresses as users write them in settings: `host:port`, `[v6]:port`, or a bare port, which means the
// workload's own loopback (the original dialled bare ports as-is and failed).

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** `host:port`, `[v6]:port` or a bare port (127.0.0.1); undefined if it is neither. */
export function parseHostPort(text: string): HostPort | undefined {
  const bare = parsePort(text.trim());
  if (bare !== undefined) return { host: '127.0.0.1', port: bare };
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/[\]]+)):(\d+)$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3] === undefined ? undefined : parsePort(m[3]);
  return host === undefined || port === undefined ? undefined : { host: host.toLowerCase(), port };
}

/** The inverse of parseHostPort: IPv6 hosts in brackets. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
