// A client for `pods/NAME/attach` over the Kubernetes remote-command WebSocket protocols. Every binary frame starts
// with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error (a JSON Status), 255 close (v5 only: [255, channel]).
// Only v5.channel.k8s.io can say "stdin ended" without closing the socket; under v4 the end of stdin would end the
// session and lose the output, so krun refuses v4 with a clear error instead of truncating.
import type { Readable, Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { PermissionError } from '../errors.ts';
import type { KubeClient, KubeStatus } from '../kube/client.ts';
import { FnRuntimeError } from './errors.ts';

export const V5 = 'v5.channel.k8s.io';
export const V4 = 'v4.channel.k8s.io';

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const CLOSE = 255;
/** Frames of stdin no larger than this, so one slow write never holds a huge buffer. */
const CHUNK = 64 * 1024;

export interface AttachOptions {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  /** Sent to the container, then its end (the v5 close frame). */
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly signal: AbortSignal;
  /**
   * Called once the stream is open and before any stdin is sent (a KRM function is still blocked reading it):
   * returns what the container wrote before the attach, from its log, so it is not lost (see reconcile()).
   */
  readonly earlierOutput?: () => Promise<Buffer | undefined>;
  /** Called with the negotiated subprotocol once open. */
  readonly onOpen?: (protocol: string) => void;
}

/**
 * The part of `log` that was written before `attached` (what the attach stream delivered first) began: the log
 * minus its longest suffix that is also a prefix of `attached`. Both are merged stdout+stderr in write order.
 */
export function reconcile(log: Buffer, attached: Buffer): Buffer {
  for (let k = Math.min(log.length, attached.length); k > 0; k--) {
    if (log.subarray(log.length - k).equals(attached.subarray(0, k))) return log.subarray(0, log.length - k);
  }
  return log;
}

function attachUrl(server: string, o: AttachOptions): URL {
  const url = new URL(`/api/v1/namespaces/${o.namespace}/pods/${encodeURIComponent(o.pod)}/attach`, server);
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  const query = { container: o.container, stdin: 'true', stdout: 'true', stderr: 'true', tty: 'false' };
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url;
}

/** Writes `data`, resolving at once unless the stream is full, then once it drains (backpressure). */
export function write(stream: Writable, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.write(data, (err) => (err ? reject(err) : undefined))) resolve();
    else stream.once('drain', resolve);
  });
}

/** Streams the container's stdio until the server ends the session. The exit code comes from the Pod's status. */
export async function attach(client: KubeClient, o: AttachOptions): Promise<{ protocol: string }> {
  const { connection } = client;
  const token = await client.bearer();
  const ws = new WebSocket(attachUrl(connection.server, o), [V5, V4], {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    perMessageDeflate: false,
    ...(connection.ca ? { ca: connection.ca } : {}),
    ...(connection.clientCert ? { cert: connection.clientCert, key: connection.clientKey ?? '' } : {}),
    rejectUnauthorized: !connection.insecureSkipTlsVerify,
  });
  const what = `attach to pods/${o.pod} in namespace ${o.namespace}`;
  let status = '';
  // Frames are handled strictly in order: output backpressure pauses the socket, never reorders it.
  let queue: Promise<void> = Promise.resolve();
  let early: { channel: number; data: Buffer }[] | undefined = o.earlierOutput ? [] : undefined;
  const deliver = (channel: number, data: Buffer): Promise<void> => {
    if (channel === STDOUT) return write(o.stdout, data);
    if (channel === STDERR) return write(o.stderr, data);
    if (channel === ERROR) status += data.toString('utf8');
    return Promise.resolve();
  };
  const finished = new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      ws.terminate();
      reject(err);
    };
    const onAbort = () => fail(o.signal.reason);
    o.signal.addEventListener('abort', onAbort, { once: true });
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let body: KubeStatus | undefined;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as KubeStatus;
        } catch {}
        const detail = body?.message ?? `HTTP ${res.statusCode}`;
        fail(
          res.statusCode === 403
            ? new PermissionError(`forbidden: krun may not ${what}: ${detail}`, {
                hints: [`krun fn rbac -n ${o.namespace} --service-account NAMESPACE:NAME --apply`],
              })
            : new FnRuntimeError(`${what} failed: ${detail}`),
        );
      });
    });
    ws.on('error', (err) => fail(new FnRuntimeError(`${what} failed: ${err.message}`, { cause: err })));
    ws.on('message', (frame, isBinary) => {
      if (!isBinary || frame.length === 0) return;
      const channel = frame[0] ?? -1;
      const data = frame.subarray(1);
      if (early && (channel === STDOUT || channel === STDERR)) {
        early.push({ channel, data });
        return;
      }
      queue = queue.then(async () => {
        ws.pause();
        try {
          await deliver(channel, data);
        } finally {
          ws.resume();
        }
      });
      queue.catch(fail);
    });
    ws.on('close', () => {
      o.signal.removeEventListener('abort', onAbort);
      queue.then(() => {
        // The server ends every attach with a Status on channel 3; without one the stream broke, and the output
        // may be cut short: that must not pass for the function's complete result.
        if (!status) {
          return reject(
            new FnRuntimeError(`${what}: the stream ended without the server's final status; output may be incomplete`),
          );
        }
        const parsed = JSON.parse(status) as { status?: string; message?: string };
        if (parsed.status === 'Failure') reject(new FnRuntimeError(`${what}: ${parsed.message ?? status}`));
        else resolve();
      }, reject);
    });
  });
  finished.catch(() => {});
  await Promise.race([new Promise<void>((resolve) => ws.once('open', () => resolve())), finished]);
  o.onOpen?.(ws.protocol);
  if (ws.protocol !== V5) {
    ws.close(1000);
    throw new FnRuntimeError(
      `the API server speaks ${ws.protocol || 'no known remote-command protocol'} for attach, which cannot deliver the end of stdin: the function would never see its input end, or its output would be cut off`,
      {
        hints: [
          `use a cluster whose API server offers ${V5}: Kubernetes 1.30 or later (1.29 with the TranslateStreamCloseWebsocketRequests feature gate)`,
        ],
      },
    );
  }
  if (early) {
    const log = await o.earlierOutput?.();
    const buffered = early;
    early = undefined;
    if (log) {
      const before = reconcile(log, Buffer.concat(buffered.map((f) => f.data)));
      if (before.length > 0) queue = queue.then(() => write(o.stderr, before));
    }
    for (const f of buffered) queue = queue.then(() => deliver(f.channel, f.data));
  }
  // Raced with the session: an abort (or a function that ends early) must not wait for more of stdin.
  await Promise.race([sendStdin(ws, o.stdin), finished]);
  await finished;
  await queue; // output buffered before the log was read, if the session ended meanwhile
  return { protocol: ws.protocol };
}

async function sendStdin(ws: WebSocket, stdin: Readable): Promise<void> {
  // A function may end without reading all of its input: the session closes, and the rest is not sent.
  const send = (frame: Buffer) =>
    new Promise<void>((resolve, reject) =>
      ws.send(frame, { binary: true }, (err) => (err && ws.readyState === 1 ? reject(err) : resolve())),
    );
  for await (const chunk of stdin) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    for (let at = 0; at < data.length; at += CHUNK) {
      if (ws.readyState !== 1) return;
      await send(Buffer.concat([Buffer.from([STDIN]), data.subarray(at, at + CHUNK)]));
    }
  }
  if (ws.readyState === 1) await send(Buffer.from([CLOSE, STDIN]));
}
