// `krun hbone URL`: stdin and stdout are the tunnel, as OpenSSH's ProxyCommand expects. End of stdin half-closes the
// tunnel; the command ends once both directions have ended. Nothing but tunnel bytes is ever written to stdout.
import { Duplex, Writable } from 'node:stream';
import type { Streams } from '../context.ts';
import { TransportError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { coalesceWrites } from '../net/coalesce.ts';
import type { HboneClient } from './client.ts';
import { splice } from './pipe.ts';

export interface StdioTunnelOptions {
  readonly client: HboneClient;
  readonly target: string;
  readonly streams: Pick<Streams, 'in' | 'out'>;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

export async function runStdioTunnel(options: StdioTunnelOptions): Promise<void> {
  const { client, target, streams, log } = options;
  let onAbort: (() => void) | undefined;
  try {
    const tunnel = await client.open(target);
    log.debug('tunnel open', { target, via: tunnel.via });
    // The tunnel delivers 16 KiB HTTP/2 DATA frames; coalesced, one event-loop turn's frames reach stdout as one
    // writev instead of one pipe write each (ssh reads them all in one go either way).
    const local = Duplex.from({ readable: streams.in, writable: keepOpen(coalesceWrites(streams.out)) });
    onAbort = () => tunnel.reset();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const result = await splice({ stream: local }, { stream: tunnel.stream, reset: tunnel.reset });
    log.debug('tunnel closed', { target, sent: result.aToB, received: result.bToA });
    if (options.signal?.aborted) throw options.signal.reason;
    if (result.error) {
      throw new TransportError(`the tunnel to ${target} broke: ${result.error.message}`, { cause: result.error });
    }
  } finally {
    if (onAbort) options.signal?.removeEventListener('abort', onAbort);
    client.close();
  }
}

/**
 * Writes through to `out` with its back-pressure, but never ends it: the end of the tunnel's incoming direction
 * must not close the process's stdout (the CLI still flushes it on exit, which closes it for the reader).
 */
function keepOpen(out: Writable): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (out.write(chunk)) callback();
      else out.once('drain', () => callback());
    },
    final(callback) {
      callback();
    },
  });
}
