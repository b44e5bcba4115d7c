// An SSH connection to a target's debug server with ssh2's Client over one HBONE tunnel stream (no OpenSSH
// subprocess): the operator's identities, the host key pinned on first use, and refusals that name their fix.
import { finished } from 'node:stream';
import type { Client } from 'ssh2';
import type { KrunContext } from '../context.ts';
import { TransportError } from '../errors.ts';
import type { HboneClient } from '../hbone/client.ts';
import { coalesceWrites } from '../net/coalesce.ts';
import { transportAlgorithms } from '../ssh/algorithms.ts';
import { loadIdentities } from './identities.ts';
import { checkHostKey, defaultKnownHostsFile } from './known-hosts.ts';
import { operatorGoogleAuth, type ResolvedTarget, resolveTarget, type TargetOptions } from './target.ts';
import { hboneClientFor, openTunnel, SSH_TARGET, sshAuthHint, type TunnelOptions } from './tunnel.ts';

export interface SshOptions extends TargetOptions, TunnelOptions {
  readonly identityFile?: string | undefined;
  readonly knownHostsFile?: string | undefined;
  /** The login name (the server runs everything as krun's user; default root). */
  readonly user?: string | undefined;
}

export interface SshConnection {
  readonly client: Client;
  readonly target: ResolvedTarget;
  readonly hostKey: string;
  /** The instance the tunnel reached, when the server says. */
  readonly instance: string | undefined;
  /** Ends the SSH connection, lets the tunnel finish cleanly (bounded), then closes the HTTP/2 connection. */
  close(): Promise<void>;
}

/** Opens the tunnel and the SSH connection; an HboneClient can be shared (cp and ssh open one each). */
export async function connectSsh(
  input: string | undefined,
  options: SshOptions,
  ctx: KrunContext,
): Promise<SshConnection> {
  const auth = operatorGoogleAuth(options, ctx);
  const target = await resolveTarget(input, options, ctx, { auth });
  const identities = await loadIdentities({ identityFile: options.identityFile, env: ctx.env, log: ctx.log });
  const hbone = hboneClientFor(target, options, ctx, auth);
  try {
    return await sshOver(hbone, target, options, identities, ctx);
  } catch (err) {
    hbone.close();
    throw err;
  }
}

async function sshOver(
  hbone: HboneClient,
  target: ResolvedTarget,
  options: SshOptions,
  identities: Awaited<ReturnType<typeof loadIdentities>>,
  ctx: KrunContext,
): Promise<SshConnection> {
  const tunnel = await openTunnel(hbone, target, SSH_TARGET, ctx);
  const { Client: Ssh2Client } = (await import('ssh2')).default;
  const client = new Ssh2Client();
  const knownHosts = options.knownHostsFile ?? defaultKnownHostsFile(ctx.env);
  let mismatch: TransportError | undefined;
  let hostKey = '';
  const user = options.user ?? 'root';
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve();
    });
    client.on('error', (err: Error & { level?: string }) => {
      ctx.signal.removeEventListener('abort', onAbort);
      if (mismatch) return reject(mismatch);
      if (err.level === 'client-authentication') {
        return reject(
          new TransportError(
            `${target.service ? `Cloud Run service ${target.service.name}` : target.origin.origin} refused your SSH key (tried ${identities.sources.join(', ')})`,
            { hints: [sshAuthHint(target)] },
          ),
        );
      }
      reject(new TransportError(`SSH to ${target.input} failed: ${err.message}`, { cause: err }));
    });
    client.connect({
      // ssh2 writes each SSH packet in pieces; coalesced, they leave as one HTTP/2 DATA write.
      sock: coalesceWrites(tunnel.stream),
      username: user,
      algorithms: transportAlgorithms(),
      authHandler: identities.methods(user),
      readyTimeout: 60_000,
      keepaliveInterval: 30_000,
      hostVerifier: ((key: Buffer, verify: (ok: boolean) => void) => {
        checkHostKey(knownHosts, target.hostAlias, key).then(
          (check) => {
            if (!check.ok) {
              mismatch = check.error;
              return verify(false);
            }
            hostKey = check.fingerprint;
            if (check.added) {
              ctx.log.warn(`Permanently added ${target.hostAlias} (${check.fingerprint}) to ${knownHosts}`);
            }
            verify(true);
          },
          (err: Error) => {
            mismatch = new TransportError(`can't read ${knownHosts}: ${err.message}`);
            verify(false);
          },
        );
      }) as never,
    });
  }).catch(async (err: unknown) => {
    client.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      finished(tunnel.stream, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    throw err;
  });
  return {
    client,
    target,
    hostKey,
    instance: tunnel.instance,
    close: async () => {
      client.end();
      if (!tunnel.stream.destroyed) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          finished(tunnel.stream, () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      hbone.close();
    },
  };
}
