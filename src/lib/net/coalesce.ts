// Write coalescing: a stream's writes issued in one turn of the event loop leave together, as one writev, instead
// of one system call (or one HTTP/2 DATA frame write) each. Tunnels receive HTTP/2 DATA in 16 KiB frames, one
// 'data' event each, and ssh2 writes every SSH packet in up to four pieces (length, body, tag); coalesced, a 64 KiB
// read becomes one write. Back-pressure is unchanged: a corked stream still counts what it holds against its
// highWaterMark, and flushing happens in the same loop iteration (the check phase), so nothing waits on a timer.
import type { Writable } from 'node:stream';

/** Makes `stream.write` cork the stream until the end of this event-loop turn; returns the stream. */
export function coalesceWrites<T extends Writable>(stream: T): T {
  const write = stream.write;
  let corked = false;
  const flush = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = function (this: T, ...args: Parameters<Writable['write']>) {
    if (!corked && !stream.writableEnded) {
      corked = true;
      stream.cork();
      setImmediate(flush);
    }
    return write.apply(this, args);
  } as T['write'];
  return stream;
}
