// The `krun hbone` service: turns the command's options into a client with the right credentials and runs it in
// stdio (ProxyCommand) or local-forward mode.
import type { KrunContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { knownProject } from '../gcp/gcloud-config.ts';
import { type GoogleAuthSource, sharedGoogleAuth } from '../gcp/iam-admin.ts';
import { readCaFile } from './ca-file.ts';
import { HboneClient, type TransportMode } from './client.ts';
import { runLocalForwards } from './forward.ts';
import { runStdioTunnel } from './stdio.ts';
import { fileToken, googleIdToken, noToken, staticToken, type TokenSource } from './token.ts';
import { parseForward, parseTunnelUrl } from './url.ts';

export interface HboneClientCommandOptions {
  readonly url: string;
  readonly localForwards?: readonly string[];
  /** `google` (default for https URLs) or `none` (default for http URLs); ignored with a token or token file. */
  readonly auth?: 'google' | 'none';
  readonly token?: string;
  readonly tokenFile?: string;
  readonly audience?: string;
  readonly impersonateServiceAccount?: string;
  readonly caFile?: string;
  readonly transport?: TransportMode;
  /** For tests: called with the bound addresses in -L mode. */
  readonly onListening?: (addresses: readonly string[]) => void;
}

/** Where each tunnel's bearer token comes from; Google ID tokens from the command's one GoogleAuth. */
export function tokenSourceFor(
  options: HboneClientCommandOptions,
  origin: URL,
  googleAuth: GoogleAuthSource,
): TokenSource {
  if (options.token) return staticToken(options.token);
  if (options.tokenFile) return fileToken(options.tokenFile);
  const auth = options.auth ?? (origin.protocol === 'https:' ? 'google' : 'none');
  if (auth === 'none') return noToken;
  return googleIdToken({
    audience: options.audience ?? origin.origin,
    auth: googleAuth,
    ...(options.impersonateServiceAccount ? { impersonate: options.impersonateServiceAccount } : {}),
  });
}

export async function runHboneClient(options: HboneClientCommandOptions, ctx: KrunContext): Promise<void> {
  const { origin, target } = parseTunnelUrl(options.url);
  const forwards = (options.localForwards ?? []).map(parseForward);
  if (forwards.length === 0 && target === undefined) {
    throw new UsageError(`${options.url} names no tunnel target`, {
      hints: [`krun hbone ${origin.origin}/_hbone/22`, `krun hbone -L 2222:22 ${origin.origin}`],
    });
  }
  const ca = readCaFile(options.caFile);
  const client = new HboneClient({
    origin,
    tokens: tokenSourceFor(options, origin, sharedGoogleAuth(knownProject(ctx.env))),
    log: ctx.log,
    ...(ca ? { ca } : {}),
    ...(options.transport ? { transport: options.transport } : {}),
  });
  if (forwards.length > 0) {
    await runLocalForwards({
      client,
      forwards,
      log: ctx.log,
      signal: ctx.signal,
      ...(options.onListening ? { onListening: options.onListening } : {}),
    });
    return;
  }
  await runStdioTunnel({ client, target: target ?? '', streams: ctx.streams, log: ctx.log, signal: ctx.signal });
}
