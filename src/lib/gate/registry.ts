// Which Cloud Run URL a mesh host goes to: the registrations `krun register` creates (a Service, and a ServiceEntry
// for the URL-prefix name, labelled krun.dev/registration and annotated krun.dev/cloud-run-url), listed from the API
// server and then watched, so the route table follows each change as its watch event arrives. These are the gate's
// allow-list: nothing else is tunnelled to, except, when enabled, the original's convention that a Service whose
// name is a Cloud Run URL prefix (`SERVICE-HASH-REGION`) goes to `https://NAME.a.run.app`.
import type { Clock } from '../context.ts';
import { apiStatus, type KubeClient, type KubeObject } from '../kube/client.ts';
import { WatchedCollection, type WatchOptions } from '../kube/watch.ts';
import type { Logger } from '../log/logger.ts';
import { CLOUD_RUN_URL_ANNOTATION, REGISTRATION_LABEL } from '../setup/names.ts';
import { type MeshName, parseMeshSni } from './sni.ts';

export interface Destination {
  /** `https://host[:port]`: the Cloud Run service's origin. */
  readonly origin: string;
  /** `service default/fortio`, `serviceentry default/fortio-abc-uc`, `name convention default/fortio-abc-uc`. */
  readonly source: string;
}

export type Resolution =
  | { readonly ok: true; readonly destination: Destination; readonly name: MeshName }
  | { readonly ok: false; readonly reason: string };

export interface RegistryOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly clock: Clock;
  /** Backoff and idle timeout of the watches (tests shorten them). */
  readonly watch?: Pick<WatchOptions, 'backoffMs' | 'idleMs'>;
  /** The original's convention for Services that are not registered: name = Cloud Run URL prefix. */
  readonly nameFallback: boolean;
  readonly signal: AbortSignal;
}

interface ServiceEntry extends KubeObject {
  readonly spec?: { readonly hosts?: readonly string[] };
}

const SERVICE_ENTRIES = '/apis/networking.istio.io/v1/serviceentries';
/**
 * The convention's Service lookups are cached, bounded (any client can name any namespace/name in its SNI, so an
 * unbounded cache is unbounded memory) and for a while only (a deleted Service stops being routed to).
 */
export const CONVENTION_CACHE_SIZE = 1024;
export const CONVENTION_CACHE_MS = 60_000;
/** The original's Cloud Run URL prefix: `SERVICE-HASH-REGIONCODE`. */
const URL_PREFIX = /^[a-z][-a-z0-9]*-[a-z0-9]{10}-[a-z]{2}$/;

/** The origin of an annotation's Cloud Run URL, or why it is unusable (only https origins are tunnelled to). */
export function cloudRunOrigin(value: string): { origin: string } | { error: string } {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return { error: `"${value}" is not a URL` };
  }
  if (url.protocol !== 'https:') return { error: `"${value}" is not an https URL` };
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
    return { error: `"${value}" is not a bare service URL (https://HOST)` };
  }
  return { origin: url.origin };
}

export class Registry {
  readonly #options: RegistryOptions;
  #hosts = new Map<string, Destination>();
  readonly #warned = new Set<string>();
  /** `namespace/name` → whether that Service existed, and when that was read (oldest first). */
  readonly #conventional = new Map<string, { exists: boolean; at: number }>();
  readonly #services: WatchedCollection;
  #entries: WatchedCollection<ServiceEntry> | undefined;

  constructor(options: RegistryOptions) {
    this.#options = options;
    const watch = (path: string) => ({
      client: options.client,
      path,
      labelSelector: REGISTRATION_LABEL,
      log: options.log,
      clock: options.clock,
      signal: options.signal,
      onChange: () => this.#rebuild(),
      ...options.watch,
    });
    this.#services = new WatchedCollection(watch('/api/v1/services'));
    this.#entries = new WatchedCollection<ServiceEntry>(watch(SERVICE_ENTRIES));
  }

  /** Lists the registrations once (failing when it can't), then watches them until the signal aborts. */
  async start(): Promise<void> {
    await this.#services.start();
    try {
      await this.#entries?.start();
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
      this.#entries = undefined;
      this.#options.log.info('no ServiceEntry resource in this cluster; routing by Services only');
    }
  }

  /** The registered hosts, for the log and metrics. */
  get size(): number {
    return this.#hosts.size;
  }

  async resolve(sni: string): Promise<Resolution> {
    const name = parseMeshSni(sni);
    if (!name) return { ok: false, reason: `"${sni}" is not a mesh service name (NAME.NAMESPACE.svc.cluster.local)` };
    let destination = this.#hosts.get(name.host);
    if (!destination && this.#options.nameFallback) destination = await this.#byConvention(name);
    if (!destination) {
      return {
        ok: false,
        reason: `no registration for ${name.host} (krun register ${name.name} -n ${name.namespace})`,
      };
    }
    return { ok: true, destination, name };
  }

  /** The route table from the watched objects, after each change. */
  #rebuild(): void {
    const hosts = new Map<string, Destination>();
    const add = (host: string, object: KubeObject, kind: string) => {
      const source = `${kind} ${object.metadata.namespace}/${object.metadata.name}`;
      const annotation = object.metadata.annotations?.[CLOUD_RUN_URL_ANNOTATION];
      if (annotation === undefined) return;
      const parsed = cloudRunOrigin(annotation);
      if ('error' in parsed) return this.#warnOnce(`${source} ${annotation}`, `ignoring ${source}: ${parsed.error}`);
      const existing = hosts.get(host.toLowerCase());
      if (existing && existing.origin !== parsed.origin) {
        return this.#warnOnce(`${source} ${host}`, `${host} is registered twice; ${existing.source} wins`, {
          ignored: source,
        });
      }
      hosts.set(host.toLowerCase(), { origin: parsed.origin, source });
    };
    for (const s of this.#services.items.values()) {
      add(`${s.metadata.name}.${s.metadata.namespace}.svc.cluster.local`, s, 'service');
    }
    for (const e of this.#entries?.items.values() ?? []) {
      for (const host of e.spec?.hosts ?? []) add(host, e, 'serviceentry');
    }
    const changed =
      hosts.size !== this.#hosts.size || [...hosts].some(([h, d]) => this.#hosts.get(h)?.origin !== d.origin);
    this.#hosts = hosts;
    this.#conventional.clear();
    if (changed) this.#options.log.info('registrations', { hosts: hosts.size });
  }

  async #byConvention(name: MeshName): Promise<Destination | undefined> {
    if (!URL_PREFIX.test(name.name)) return undefined;
    const key = `${name.namespace}/${name.name}`;
    const now = this.#options.clock.now().getTime();
    let exists: boolean;
    const cached = this.#conventional.get(key);
    if (cached && now - cached.at < CONVENTION_CACHE_MS) exists = cached.exists;
    else {
      const path = `/api/v1/namespaces/${encodeURIComponent(name.namespace)}/services/${encodeURIComponent(name.name)}`;
      try {
        exists = (await this.#options.client.find(path, { signal: this.#options.signal })) !== undefined;
      } catch (err) {
        this.#options.log.warn('cannot look up a Service', { service: key, error: (err as Error).message });
        return undefined;
      }
      this.#conventional.delete(key);
      this.#conventional.set(key, { exists, at: now });
      if (this.#conventional.size > CONVENTION_CACHE_SIZE) {
        this.#conventional.delete(this.#conventional.keys().next().value as string);
      }
    }
    return exists ? { origin: `https://${name.name}.a.run.app`, source: `name convention ${key}` } : undefined;
  }

  #warnOnce(key: string, message: string, fields: Record<string, string> = {}): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#options.log.warn(message, fields);
  }
}
