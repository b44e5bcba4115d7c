// The launcher's HBONE port: started last, once the app is ready, so Cloud Run sees the instance as listening only
// when it can serve. Tunnels reach only the allow-listed targets: the SSH debug server, the mesh's inbound port,
// the app, and the PORT_<name> targets of the configuration (environment and mesh-env).
import { readFile } from 'node:fs/promises';
import type { Audit } from '../audit/audit.ts';
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import type { HboneServer } from '../hbone/server.ts';
import { parseHostPort } from '../net/address.ts';
import type { HboneAuth, RunConfig } from './config.ts';

async function readSetting(path: string, name: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${name}=${path} can't be read: ${(err as Error).message}`);
  }
}

async function authenticator(auth: HboneAuth) {
  const { createJwtVerifier } = await import('../hbone/jwt.ts');
  const { jwtAuthenticator } = await import('../hbone/auth.ts');
  const verifier = createJwtVerifier({ issuers: [auth.issuer], audiences: [auth.audience], jwksUri: auth.jwksUri });
  return jwtAuthenticator({ verifier, principals: auth.principals });
}

export async function startHbone(config: RunConfig, ctx: KrunContext, audit: Audit): Promise<HboneServer | undefined> {
  const listen = config.hboneListen.value;
  if (!listen) return undefined;
  const { startHboneServer } = await import('../hbone/server.ts');
  const { TargetTable } = await import('../hbone/targets.ts');
  const app = parseHostPort(config.appAddress.value);
  // The reverse proxy and the app target assume the app on loopback, as in a Pod.
  const appPort = app && (app.host === '127.0.0.1' || app.host === 'localhost') ? app.port : undefined;
  const named = Object.fromEntries(Object.entries(config.ports).map(([name, v]) => [name, v.value]));
  const tls = config.hboneTls.value;
  const auth = config.hboneAuth.value;
  const server = await startHboneServer({
    listen: parseHostPort(listen) ?? { port: 15009 },
    // /_hbone/22 is the SSH debug server wherever KRUN_SSH_PORT put it (left out when it is off).
    targets: new TargetTable({
      sshPort: config.sshPort.value ?? null,
      ...(appPort === undefined ? {} : { appPort }),
      named,
    }),
    ...(appPort === undefined ? {} : { appPort }),
    ...(tls
      ? {
          tls: {
            cert: await readSetting(tls.cert, 'KRUN_HBONE_TLS_CERT'),
            key: await readSetting(tls.key, 'KRUN_HBONE_TLS_KEY'),
          },
        }
      : {}),
    ...(auth ? { auth: await authenticator(auth) } : {}),
    audit,
    // On Cloud Run its front end is the only way in, and it verified the caller's ID token.
    trustFrontEndIdentity: !auth && Boolean(ctx.env.K_SERVICE),
    log: ctx.log.with({ component: 'hbone' }),
    instance: config.podName.value,
  });
  ctx.log.info('HBONE listening', {
    address: `${server.address.address}:${server.address.port}`,
    tls: tls !== undefined,
    auth: auth ? auth.issuer : 'none (Cloud Run IAM in front)',
    targets: Object.keys(named).length,
  });
  return server;
}
