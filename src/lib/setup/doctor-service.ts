// `krun doctor SERVICE`: a Cloud Run service's side of the mesh. Its registration (krun register) exists whole and
// points at the service's current URL, and the service speaks HTTP/2 end to end on krun's HBONE port (15009), which
// the gate's tunnels need.
import type { GoogleAuth } from 'google-auth-library';
import type { KrunContext } from '../context.ts';
import { getRunService, type RunService } from '../gcp/run-admin.ts';
import type { KubeClient } from '../kube/client.ts';
import { resourceName } from '../output/printer.ts';
import type { Check } from './doctor.ts';
import { CLOUD_RUN_URL_ANNOTATION } from './names.ts';
import { registeredObjects } from './register.ts';
import { registrationObjects } from './register-objects.ts';

/** The port krun's HBONE server listens on in Cloud Run (the original's `--port 15009`). */
export const HBONE_PORT = 15009;

export interface ServiceTarget {
  readonly service: string;
  readonly namespace: string;
  readonly project: string | undefined;
  readonly region: string | undefined;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether the service's container port is named h2c (HTTP/2 end to end) and is 15009. */
export function http2Check(service: string, run: RunService, region: string): Check {
  const name = `Cloud Run service ${service} uses HTTP/2 end to end on port ${HBONE_PORT}`;
  const ok = run.ports.some((p) => p.name === 'h2c' && p.containerPort === HBONE_PORT);
  const found = run.ports.map((p) => `${p.name ?? 'http1'} ${p.containerPort ?? 8080}`).join(', ') || 'no ports';
  return ok
    ? { name, ok }
    : {
        name,
        ok,
        detail: `ports: ${found}`,
        fix: `gcloud run services update ${service} --region ${region} --use-http2 --port ${HBONE_PORT}`,
      };
}

export async function serviceChecks(
  target: ServiceTarget,
  client: KubeClient,
  auth: () => Promise<GoogleAuth>,
  ctx: KrunContext,
): Promise<Check[]> {
  const { service, namespace, project, region } = target;
  const checks: Check[] = [];
  const register = `krun register ${service} -n ${namespace} --project ${project ?? 'PROJECT'} --region ${region ?? 'REGION'}`;
  let run: RunService | undefined;
  const lookup = `Cloud Run service ${service}`;
  if (!project || !region) {
    checks.push({ name: lookup, ok: false, detail: 'no project or region given', fix: 'pass --project and --region' });
  } else {
    try {
      run = await getRunService(await auth(), project, region, service, ctx.env, ctx.signal);
      checks.push({ name: lookup, ok: true, detail: run.uri });
      checks.push(http2Check(service, run, region));
    } catch (err) {
      checks.push({
        name: lookup,
        ok: false,
        detail: message(err),
        fix: `gcloud run services list --project ${project}`,
      });
    }
  }

  const name = `registration of ${service} in namespace ${namespace}`;
  try {
    const found = await registeredObjects(client, namespace, service, ctx.signal);
    const svc = found.find((o) => o.kind === 'Service' && o.metadata.name === service);
    const entry = found.find((o) => o.kind === 'WorkloadEntry') as { spec?: { address?: string } } | undefined;
    const url = run?.uri ?? svc?.metadata.annotations?.[CLOUD_RUN_URL_ANNOTATION];
    if (!svc || !entry?.spec?.address || !url) {
      checks.push({ name, ok: false, detail: found.length === 0 ? 'not found' : 'incomplete', fix: register });
      return checks;
    }
    const wanted = registrationObjects({
      service,
      namespace,
      url,
      gateAddress: entry.spec.address,
      gatePort: 0,
      serviceAccount: 'default',
    }).map((o) => resourceName(o));
    const have = new Set(found.map((o) => resourceName(o)));
    const missing = wanted.filter((w) => !have.has(w));
    const current = svc.metadata.annotations?.[CLOUD_RUN_URL_ANNOTATION];
    if (missing.length > 0) {
      checks.push({ name, ok: false, detail: `missing ${missing.join(', ')}`, fix: register });
    } else if (current !== url) {
      checks.push({
        name,
        ok: false,
        detail: `points at ${current ?? 'no URL'}, but the service's URL is ${url}`,
        fix: register,
      });
    } else {
      checks.push({ name, ok: true, detail: `${url} via ${entry.spec.address}` });
    }
  } catch (err) {
    checks.push({ name, ok: false, detail: message(err), fix: register });
  }
  return checks;
}
