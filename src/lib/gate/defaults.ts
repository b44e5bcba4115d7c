// The gate's defaults, apart from its code so the command's --help loads nothing else.

/** The workload's mesh port as `krun run` serves it: `/_hbone/15003` (the mtls target of hbone/targets.ts). */
export const DEFAULT_TARGET = '15003';
/** /healthz, /readyz and /metrics; the port Istio's own proxies answer health checks on. */
export const DEFAULT_ADMIN_PORT = 15021;

/** Refused connections logged in full per reason and minute; a scanner's flood is summed up in one line. */
export const REFUSAL_LOG = { perWindow: 10, windowMs: 60_000 } as const;

/**
 * Connections still sending their ClientHello, at most: each may buffer up to MAX_BUFFERED_BYTES until the hello
 * timeout, so without a cap a flood of silent connections is unbounded memory. More are closed at once ('busy').
 */
export const MAX_PENDING_HELLOS = 1024;

/** How tunnels are asked for (tunnel-method.ts): `POST /_hbone/TARGET`, or HTTP/2 CONNECT. */
export const TUNNEL_METHODS = ['post', 'connect'] as const;
export type TunnelMethod = (typeof TUNNEL_METHODS)[number];
