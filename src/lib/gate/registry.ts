// Which Cloud Run URL a mesh host goes to: the registrations `krun register` creates (a Service, and a ServiceEntry
// for the URL-prefix name, labelled krun.dev/registration and annotated krun.dev/cloud-run-url), listed from the API
// server and re-listed periodically, and at once (at most once a second) when a name is not known yet. These are the
// gate's allow-list: nothing else is tunnelled to, except, when enabled, the original's convention that a Service
// whose name is a Cloud Run URL prefix (`SERVICE-HASH-REGION`) goes to `https://NAME.a.run.app`.
import type { Clock } from '../context.ts';
import { apiStatus, type KubeClient, type KubeObject } from '../kube/client.ts';
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
  /** How often the registrations are listed again. */
  readonly resyncMs: number;
  /** The original's convention for Services that are not registered: name = Cloud Run URL prefix. */
  readonly nameFallback: boolean;
  readonly signal: AbortSignal;
}

interface ServiceEntry extends KubeObject {
  readonly spec?: { readonly hosts?: readonly string[] };
}

const MISS_RELIST_MS = 1000;
const SERVICE_ENTRIES = '/apis/networking.istio.io/v1/serviceentries';
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
  #lastList = 0;
  #listing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #warned = new Set<string>();
  readonly #conventional = new Map<string, boolean>();
  #serviceEntries = true;

  constructor(options: RegistryOptions) {
    this.#options = options;
  }

  /** Lists the registrations once (failing when it can't), then keeps them current until the signal aborts. */
  async start(): Promise<void> {
    await this.#relist();
    const tick = () => {
      this.#timer = setTimeout(() => {
        this.#relist()
          .catch((err: Error) => this.#options.log.warn('cannot list registrations', { error: err.message }))
          .finally(() => {
            if (!this.#options.signal.aborted) tick();
          });
      }, this.#options.resyncMs);
      this.#timer.unref();
    };
    tick();
    this.#options.signal.addEventListener('abort', () => clearTimeout(this.#timer), { once: true });
  }

  /** The registered hosts, for the log and metrics. */
  get size(): number {
    return this.#hosts.size;
  }

  async resolve(sni: string): Promise<Resolution> {
    const name = parseMeshSni(sni);
    if (!name) return { ok: false, reason: `"${sni}" is not a mesh service name (NAME.NAMESPACE.svc.cluster.local)` };
    let destination = this.#hosts.get(name.host);
    if (!destination && this.#options.clock.now().getTime() - this.#lastList >= MISS_RELIST_MS) {
      await this.#relist().catch((err: Error) =>
        this.#options.log.warn('cannot list registrations', { error: err.message }),
      );
      destination = this.#hosts.get(name.host);
    }
    if (!destination && this.#options.nameFallback) destination = await this.#byConvention(name);
    if (!destination) {
      return {
        ok: false,
        reason: `no registration for ${name.host} (krun register ${name.name} -n ${name.namespace})`,
      };
    }
    return { ok: true, destination, name };
  }

  #relist(): Promise<void> {
    this.#listing ??= this.#list().finally(() => {
      this.#listing = undefined;
    });
    return this.#listing;
  }

  async #list(): Promise<void> {
    const { client, signal } = this.#options;
    // Counted from the attempt: with the API server down, unknown names don't turn into a stream of lists.
    this.#lastList = this.#options.clock.now().getTime();
    const services = await client.list<KubeObject>('/api/v1/services', REGISTRATION_LABEL, { signal });
    let entries: ServiceEntry[] = [];
    if (this.#serviceEntries) {
      try {
        entries = await client.list<ServiceEntry>(SERVICE_ENTRIES, REGISTRATION_LABEL, { signal });
      } catch (err) {
        if (apiStatus(err) !== 404) throw err;
        this.#serviceEntries = false;
        this.#options.log.info('no ServiceEntry resource in this cluster; routing by Services only');
      }
    }
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
    for (const s of services) add(`${s.metadata.name}.${s.metadata.namespace}.svc.cluster.local`, s, 'service');
    for (const e of entries) for (const host of e.spec?.hosts ?? []) add(host, e, 'serviceentry');
    const changed =
      hosts.size !== this.#hosts.size || [...hosts].some(([h, d]) => this.#hosts.get(h)?.origin !== d.origin);
    this.#hosts = hosts;
    this.#conventional.clear();
    if (changed) this.#options.log.info('registrations', { hosts: hosts.size });
  }

  async #byConvention(name: MeshName): Promise<Destination | undefined> {
    if (!URL_PREFIX.test(name.name)) return undefined;
    const key = `${name.namespace}/${name.name}`;
    let exists = this.#conventional.get(key);
    if (exists === undefined) {
      const path = `/api/v1/namespaces/${encodeURIComponent(name.namespace)}/services/${encodeURIComponent(name.name)}`;
      try {
        exists = (await this.#options.client.find(path, { signal: this.#options.signal })) !== undefined;
      } catch (err) {
        this.#options.log.warn('cannot look up a Service', { service: key, error: (err as Error).message });
        return undefined;
      }
      this.#conventional.set(key, exists);
    }
    return exists ? { origin: `https://${name.name}.a.run.app`, source: `name convention ${key}` } : undefined;
  }

  #warnOnce(key: string, message: string, fields: Record<string, string> = {}): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#options.log.warn(message, fields);
  }
}
