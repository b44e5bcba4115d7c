// Back-pressure for the sftp subsystem. ssh2's SFTP server parses requests as soon as channel data arrives and then
// tops the channel's window up again, so a client that never waits for answers could queue requests (and the data
// of its WRITEs) without limit. ssh2's own channel back-pressure applies when a channel's push() returns false: it
// stops sending window adjustments until told to resume. The queue uses that: past its limit the client can send at
// most the rest of its window (2 MiB); once the queue drains below half, the window opens again. Only this channel
// waits (shells and forwards on the same connection go on), and a client pipelining within the limit (OpenSSH's
// scp and sftp keep 64 requests of 32 KiB in flight; `krun cp` similar) never sees a pause.

/** The ssh2 channel internals the credit uses (ssh2's Channel and SFTP share them; not in its typings). */
interface ChannelInternals {
  push(data: Buffer | null): unknown;
  _waitChanDrain?: boolean;
  readonly incoming: { window: number };
  readonly outgoing: { readonly id: number; readonly state: string };
  readonly _protocol: { channelWindowAdjust(id: number, amount: number): void };
}

export interface QueueLimit {
  readonly bytes: number;
  readonly requests: number;
}

/** 8 MiB or 256 requests: four times what OpenSSH's clients keep in flight, so they are never held back. */
export const QUEUE_LIMIT: QueueLimit = { bytes: 8 * 1024 * 1024, requests: 256 };

export interface QueueCredit {
  /** Counts a queued request (its bytes: a WRITE's data). */
  add(bytes: number): void;
  /** Counts a request as served; reopens the window once the queue is below half its limit. */
  done(bytes: number): void;
  readonly queued: Readonly<QueueLimit>;
  readonly paused: boolean;
}

export function queueCredit(channel: unknown, limit: QueueLimit = QUEUE_LIMIT): QueueCredit {
  const ch = channel as ChannelInternals;
  const window = ch.incoming.window;
  const queued = { bytes: 0, requests: 0 };
  let paused = false;
  const push = ch.push.bind(ch);
  ch.push = (data) => {
    push(data);
    paused ||= queued.bytes >= limit.bytes || queued.requests >= limit.requests;
    return !paused;
  };
  return {
    add(bytes) {
      queued.bytes += bytes;
      queued.requests++;
    },
    done(bytes) {
      queued.bytes -= bytes;
      queued.requests--;
      if (!paused || queued.bytes >= limit.bytes / 2 || queued.requests >= limit.requests / 2) return;
      paused = false;
      // ssh2 marked the channel waiting when push() said no; top its window up as its own drain would.
      if (!ch._waitChanDrain) return;
      ch._waitChanDrain = false;
      const amount = window - ch.incoming.window;
      if (amount <= 0 || ch.outgoing.state !== 'open') return;
      ch.incoming.window += amount;
      ch._protocol.channelWindowAdjust(ch.outgoing.id, amount);
    },
    queued,
    get paused() {
      return paused;
    },
  };
}
