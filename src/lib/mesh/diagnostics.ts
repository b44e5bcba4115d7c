// What krun adds to "pilot-agent was not ready" in the modes with Envoy: Envoy's configuration as its admin port
// reports it, saved next to the bootstrap (it is large; Envoy redacts private keys but the file stays private).
import { join } from 'node:path';
import { writeFileAtomic } from '../fs/atomic-file.ts';
import { MESH_PATHS } from './injector.ts';

/** Envoy's admin port: Istio's ProxyConfig default, which krun does not change. */
export const ENVOY_ADMIN = 'http://127.0.0.1:15000';
const TIMEOUT_MS = 2000;

/** Saves Envoy's /config_dump under the base directory and says where, or why there is none. */
export async function saveEnvoyConfigDump(baseDir: string): Promise<string> {
  const url = `${ENVOY_ADMIN}/config_dump`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = await res.text();
    if (!res.ok) return `Envoy's config dump: ${url} answered ${res.status}`;
    const path = join(baseDir, MESH_PATHS.proxyDir, 'config_dump.json');
    await writeFileAtomic(path, body, 0o600);
    return `Envoy's config dump (${body.length} bytes): ${path}`;
  } catch (err) {
    return `Envoy's config dump: none, ${url} did not answer (${(err as Error).message})`;
  }
}
