// `krun port-forward TARGET [LOCAL:]REMOTE…`: local listeners whose connections each become one HBONE tunnel, all
// streams of one HTTP/2 connection. When the tunnel drops (the instance restarts, the connection breaks), new
// connections wait for it to come back instead of the command dying, as kubectl's does.
import { createServer, type Server, type Socket } from 'node:net';
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import type { Tunnel } from '../hbone/client.ts';
import { tunnelStatus } from '../hbone/client.ts';
import { splice } from '../hbone/pipe.ts';
import { listenLocal, untilAborted } from '../net/listen.ts';
import { operatorGoogleAuth, resolveTarget, type TargetOptions } from './target.ts';
import { hboneClientFor, openTunnel, type TunnelOptions } from './tunnel.ts';

export interface PortSpec {
  readonly localPort: number;
  /** What the user wrote: a port or a target name. */
  readonly remote: string;
}

export function parsePortSpec(text: string): PortSpec {
  const m = /^(?:(\d{0,5}):)?([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(text);
  const remote = m?.[2];
  const local = m?.[1] === undefined ? remote : m[1] === '' ? '0' : m[1];
  const localPort = local !== undefined && /^\d+$/.test(local) ? Number(local) : Number.NaN;
  if (!remote || !(localPort >= 0 && localPort <= 65535)) {
    throw new UsageError(`invalid port "${text}": expected [LOCAL:]REMOTE`, {
      hints: ['krun port-forward my-service 8080', 'krun port-forward my-service 9000:8080 :admin'],
    });
  }
  return { localPort, remote };
}

/** A port spec that cannot be a TARGET: `8080`, `:web`, `9000:8080` (no service name starts with a digit or ':'). */
const PORT_FIRST = /^(?:\d{0,5}:)?[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** TARGET and the ports from the arguments; TARGET may be left out (`krun port-forward 8080`). */
export function targetAndPorts(argv: readonly string[]): { target: string | undefined; ports: string[] } {
  const [first, ...rest] = argv;
  return first === undefined || (/^[\d:]/.test(first) && PORT_FIRST.test(first))
    ? { target: undefined, ports: [...argv] }
    : { target: first, ports: rest };
}

/** The tunnel target for REMOTE: a port is the workload's loopback port (22 stays the SSH server), a name as is. */
export function tunnelTarget(remote: string): string {
  return /^\d+$/.test(remote) && remote !== '22' ? `127.0.0.1:${remote}` : remote;
}

export interface PortForwardOptions extends TargetOptions, TunnelOptions {
  readonly ports: readonly string[];
  readonly addresses: readonly string[];
  /** How long a new connection waits for the tunnel to come back (default 60 s). */
  readonly waitMs?: number;
  /** Called with each "Forwarding from" line (the command prints them on stdout). */
  readonly onForwarding: (line: string) => void;
}

const RETRYABLE = new Set([undefined, 502, 503, 504]);

async function openWithRetry(open: () => Promise<Tunnel>, waitMs: number, ctx: KrunContext): Promise<Tunnel> {
  const deadline = Date.now() + waitMs;
  let delay = 100;
  let warned = false;
  for (;;) {
    try {
      const tunnel = await open();
      if (warned) ctx.log.info('the tunnel is back');
      return tunnel;
    } catch (err) {
      if (ctx.signal.aborted || !RETRYABLE.has(tunnelStatus(err)) || Date.now() >= deadline) throw err;
      if (!warned) ctx.log.warn(`the tunnel is down (${(err as Error).message}); waiting for it to come back`);
      warned = true;
      await ctx.clock.sleep(delay, ctx.signal);
      delay = Math.min(delay * 2, 2000);
    }
  }
}

export async function runPortForward(
  target: string | undefined,
  options: PortForwardOptions,
  ctx: KrunContext,
): Promise<never> {
  const specs = options.ports.map(parsePortSpec);
  if (specs.length === 0) throw new UsageError('no ports to forward', { hints: ['krun port-forward TARGET 8080'] });
  const auth = operatorGoogleAuth(options, ctx);
  const resolved = await resolveTarget(target, options, ctx, { auth });
  const client = hboneClientFor(resolved, options, ctx, auth);
  const local = new Set<Socket>();
  const servers: Server[] = [];
  const handle = (socket: Socket, spec: PortSpec) => {
    local.add(socket);
    socket.once('close', () => local.delete(socket));
    socket.on('error', () => {});
    openWithRetry(() => openTunnel(client, resolved, tunnelTarget(spec.remote), ctx), options.waitMs ?? 60_000, ctx)
      .then(async (tunnel) => {
        const result = await splice(
          { stream: socket, reset: () => socket.resetAndDestroy() },
          { stream: tunnel.stream, reset: tunnel.reset },
        );
        if (result.error)
          ctx.log.debug('forwarded connection broke', { port: spec.remote, error: result.error.message });
      })
      .catch((err: Error) => {
        ctx.log.warn(`can't forward a connection to ${spec.remote}: ${err.message}`);
        if (!socket.destroyed) socket.resetAndDestroy();
      });
  };
  const closeAll = () => {
    for (const server of servers) server.close();
    for (const socket of local) socket.destroy();
    client.close();
  };
  try {
    for (const address of options.addresses) {
      for (const spec of specs) {
        const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => handle(s, spec));
        servers.push(server);
        const bound = await listenLocal(
          server,
          spec.localPort,
          address,
          'pick another local port, or :REMOTE for any free port',
        );
        options.onForwarding(`Forwarding from ${bound} -> ${spec.remote}`);
      }
    }
  } catch (err) {
    closeAll();
    throw err;
  }
  return untilAborted(ctx.signal, closeAll);
}
