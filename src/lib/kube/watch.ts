// A collection kept current from the API server, as client-go's informers do: one list (its resourceVersion), then a
// watch from there that applies each ADDED/MODIFIED/DELETED event and follows bookmarks. A watch the server ends
// (its timeout) resumes from the last resourceVersion at once; a broken one (the connection cut, the server
// unreachable) resumes after a backoff; when that version is too old to watch from (410 Gone, as an event or an
// answer) the collection is listed again.
import type { Clock } from '../context.ts';
import type { Logger } from '../log/logger.ts';
import { apiStatus, type KubeClient, type KubeObject, type KubeStatus } from './client.ts';

export interface WatchOptions {
  readonly client: KubeClient;
  /** The collection: `/api/v1/services` (cluster-wide). */
  readonly path: string;
  readonly labelSelector: string;
  readonly log: Logger;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  /** Called after the objects changed (an event, or a list that replaced them). */
  readonly onChange: () => void;
  /** Backoff after a broken watch: doubles from the first value up to the second. */
  readonly backoffMs?: readonly [number, number];
  /** A watch that sends nothing (not even a bookmark) for this long is taken as dead. */
  readonly idleMs?: number;
}

interface WatchEvent {
  readonly type: string;
  readonly object: KubeObject & { readonly code?: number } & KubeStatus;
}

const BACKOFF_MS: readonly [number, number] = [250, 30_000];
const IDLE_MS = 5 * 60_000;
/** The server ends each watch after 5 to 10 minutes (spread, so many gates don't rewatch at once). */
const watchSeconds = () => 300 + Math.floor(Math.random() * 300);

/** A watch that cannot go on from its resourceVersion. */
class Gone extends Error {}

export class WatchedCollection<T extends KubeObject = KubeObject> {
  readonly #options: WatchOptions;
  readonly #items = new Map<string, T>();
  #version: string | undefined;
  /** Whether the current watch received anything: the connection worked, so a break starts the backoff over. */
  #delivered = false;

  constructor(options: WatchOptions) {
    this.#options = options;
  }

  /** The objects now, by `namespace/name`. */
  get items(): ReadonlyMap<string, T> {
    return this.#items;
  }

  /** Lists once (failing as the list fails), then keeps the objects current in the background until the signal. */
  async start(): Promise<void> {
    await this.#list();
    void this.#follow();
  }

  async #list(): Promise<void> {
    const { client, path, labelSelector, signal } = this.#options;
    const list = await client.get<{ items?: T[]; metadata?: { resourceVersion?: string } }>(
      `${path}?labelSelector=${encodeURIComponent(labelSelector)}`,
      { signal },
    );
    this.#items.clear();
    for (const item of list.items ?? []) this.#items.set(keyOf(item), item);
    this.#version = list.metadata?.resourceVersion;
    this.#options.onChange();
  }

  async #follow(): Promise<void> {
    const { log, clock, signal, path } = this.#options;
    const [first, max] = this.#options.backoffMs ?? BACKOFF_MS;
    let delay = first;
    while (!signal.aborted) {
      try {
        if (this.#version === undefined) await this.#list();
        await this.#watch();
        delay = first;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof Gone || apiStatus(err) === 410) {
          log.info('watch too old; listing again', { resource: path });
          this.#version = undefined;
          continue;
        }
        if (this.#delivered) delay = first;
        log.warn('watch broken; reconnecting', { resource: path, error: (err as Error).message, retryInMs: delay });
        await clock.sleep(delay, signal).catch(() => {});
        delay = Math.min(delay * 2, max);
      }
    }
  }

  /** One watch, until the server ends it. */
  async #watch(): Promise<void> {
    const { client, path, labelSelector, signal } = this.#options;
    const query = new URLSearchParams({
      labelSelector,
      watch: '1',
      allowWatchBookmarks: 'true',
      resourceVersion: this.#version ?? '',
      timeoutSeconds: String(watchSeconds()),
    });
    this.#delivered = false;
    const res = await client.stream(`${path}?${query}`, { signal, idleMs: this.#options.idleMs ?? IDLE_MS });
    let pending = '';
    return new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        res.destroy();
        reject(err);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        this.#delivered = true;
        pending += chunk;
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
          if (line === '') continue;
          try {
            this.#apply(JSON.parse(line) as WatchEvent);
          } catch (err) {
            return fail(err as Error);
          }
        }
      });
      res.on('error', () => {});
      res.on('close', () => {
        if (res.complete) resolve();
        else reject(new Error('the watch connection broke'));
      });
    });
  }

  #apply(event: WatchEvent): void {
    const { object } = event;
    if (event.type === 'ERROR') {
      if (object.code === 410) throw new Gone(object.message ?? 'resourceVersion too old');
      throw new Error(`the watch failed: ${object.message ?? JSON.stringify(object)}`);
    }
    const version = object.metadata?.resourceVersion;
    if (version) this.#version = version;
    if (event.type === 'BOOKMARK') return;
    if (event.type === 'DELETED') this.#items.delete(keyOf(object as T));
    else if (event.type === 'ADDED' || event.type === 'MODIFIED') this.#items.set(keyOf(object as T), object as T);
    else return;
    this.#options.onChange();
  }
}

function keyOf(object: KubeObject): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}
