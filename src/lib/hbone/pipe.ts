// Joins two byte streams into one tunnel. Bytes flow both ways with back-pressure (pipe() stops reading a side while
// the other side's write buffer is full, so a stalled reader stalls the writer instead of buffering without bound),
// and writes are coalesced per event-loop turn (HTTP/2 delivers 16 KiB frames: four writes per 64 KiB otherwise).
// Each direction ends on its own: an end (TCP FIN, HTTP/2 END_STREAM, WebSocket half-close) on one side becomes an
// end on the other while the opposite direction keeps flowing. An abnormal end of either side resets the other.
import { type Duplex, finished } from 'node:stream';
import { coalesceWrites } from '../net/coalesce.ts';

export interface TunnelSide {
  readonly stream: Duplex;
  /** Aborts this side the way its transport signals failure (TCP RST, RST_STREAM); default destroy(). */
  readonly reset?: (cause: Error) => void;
}

export interface SpliceResult {
  /** Bytes read from `a` and written towards `b`. */
  readonly aToB: number;
  readonly bToA: number;
  /** Why the tunnel was torn down, if it did not end cleanly in both directions. */
  readonly error?: Error;
}

/** Resolves once both sides are done, cleanly or not; never rejects. */
export function splice(a: TunnelSide, b: TunnelSide): Promise<SpliceResult> {
  return new Promise((resolve) => {
    const counts = { aToB: 0, bToA: 0 };
    let error: Error | undefined;
    let pending = 2;
    const watch = (self: TunnelSide, other: TunnelSide) => (err?: Error | null) => {
      if (err && !error) {
        error = err;
        resetSide(other, err);
        resetSide(self, err);
      }
      pending -= 1;
      if (pending === 0) resolve(error ? { ...counts, error } : counts);
    };
    a.stream.on('data', (chunk: Buffer) => {
      counts.aToB += chunk.length;
    });
    b.stream.on('data', (chunk: Buffer) => {
      counts.bToA += chunk.length;
    });
    a.stream.pipe(coalesceWrites(b.stream));
    b.stream.pipe(coalesceWrites(a.stream));
    finished(a.stream, watch(a, b));
    finished(b.stream, watch(b, a));
  });
}

function resetSide(side: TunnelSide, cause: Error): void {
  if (side.stream.destroyed) return;
  if (side.reset) side.reset(cause);
  else side.stream.destroy();
}
