// Where the bearer token of each tunnel request comes from. Asked once per tunnel, so long-lived forwarders pick up
// refreshed credentials: Google ID tokens are cached until shortly before they expire, token files are re-read.
import { readFile } from 'node:fs/promises';
import { TransportError } from '../errors.ts';
import { CLOUD_PLATFORM_SCOPE, type GoogleAuthSource } from '../gcp/iam-admin.ts';

export interface TokenSource {
  /** A bearer token, or undefined to send none. */
  token(): Promise<string | undefined>;
  /** Forgets `token`, which the server refused (HTTP 401): the next token() is a fresh one, not from a cache. */
  invalidate?(token: string): void;
}

export const noToken: TokenSource = { token: async () => undefined };

export function staticToken(token: string): TokenSource {
  return { token: async () => token };
}

/** Re-read on every use: projected Kubernetes tokens and other rotated files stay current. */
export function fileToken(
  path: string,
  read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
): TokenSource {
  return {
    async token() {
      try {
        const text = (await read(path)).trim();
        if (text === '') throw new Error('the file is empty');
        return text;
      } catch (err) {
        throw new TransportError(`cannot read the token file ${path}: ${(err as Error).message}`, { cause: err });
      }
    },
  };
}

export interface GoogleIdTokenOptions {
  /** The ID token's audience: Cloud Run wants the service URL (`https://host`). */
  readonly audience: string;
  /** Mint the token as this service account, with the user's credentials as the source. */
  readonly impersonate?: string;
  /** The command's one GoogleAuth: its credential lookup is shared with every other Google call of the command. */
  readonly auth: GoogleAuthSource;
}

const CREDENTIAL_HINTS = [
  'gcloud auth application-default login',
  'or pass --token / --token-file, or --auth=none for a server without authentication',
];

/**
 * A Google ID token for the service from Application Default Credentials (a service-account key, `gcloud auth
 * application-default login` user or impersonation credentials, or the metadata server), optionally impersonating
 * a service account. The GoogleAuth (and so google-auth-library) is made on first use only.
 */
export function googleIdToken(options: GoogleIdTokenOptions): TokenSource {
  type IdTokenClient = import('google-auth-library').IdTokenClient;
  let client: Promise<IdTokenClient> | undefined;
  const create = async (): Promise<IdTokenClient> => {
    const auth = await options.auth();
    if (!options.impersonate) return auth.getIdTokenClient(options.audience);
    const { IdTokenClient, Impersonated } = await import('google-auth-library');
    const impersonated = new Impersonated({
      sourceClient: await auth.getClient(),
      targetPrincipal: options.impersonate,
      targetScopes: [CLOUD_PLATFORM_SCOPE],
      delegates: [],
    });
    return new IdTokenClient({
      targetAudience: options.audience,
      idTokenProvider: { fetchIdToken: (aud: string) => impersonated.fetchIdToken(aud, { includeEmail: true }) },
    });
  };
  return {
    async token() {
      try {
        client ??= create();
        const headers = await (await client).getRequestHeaders();
        return headers.get('authorization')?.replace(/^Bearer\s+/i, '') ?? undefined;
      } catch (err) {
        client = undefined;
        throw new TransportError(`cannot get a Google ID token for ${options.audience}: ${(err as Error).message}`, {
          hints: CREDENTIAL_HINTS,
          cause: err,
        });
      }
    },
    invalidate() {
      // The IdTokenClient keeps its token until near expiry: a new client fetches a new one.
      client = undefined;
    },
  };
}
