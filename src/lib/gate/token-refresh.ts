// The gate's ID token per destination, refreshed ahead of its expiry: once 80% of its lifetime has passed (as
// kubelet does) the next tunnel still gets the current token while a new one is fetched in the background, so no
// tunnel waits on the metadata server and a failed refresh costs nothing while the token is still good. A token in
// the last 5% of its life is not handed out (clock skew and the request's own time could expire it in flight).
import type { Clock } from '../context.ts';
import type { TokenSource } from '../hbone/token.ts';
import type { Logger } from '../log/logger.ts';
import { jwtLifetimeMs, REFRESH_AT } from '../run/tokens.ts';

const USABLE_UNTIL = 0.95;

interface Held {
  readonly token: string;
  /** Local time (the injected clock) the token arrived: its lifetime counts from here, immune to skew. */
  readonly receivedAt: number;
  readonly lifetimeMs: number;
}

export function refreshedAhead(source: TokenSource, clock: Clock, log: Logger, audience: string): TokenSource {
  let held: Held | undefined;
  let fetching: Promise<string | undefined> | undefined;
  const fetchNew = (): Promise<string | undefined> => {
    fetching ??= source
      .token()
      .then((token) => {
        // iat is in whole seconds: the token may be up to a second older than it says.
        const lifetimeMs = token ? (jwtLifetimeMs(token) ?? 0) - 1000 : 0;
        // The source may still hand out the same token (its own cache): then it keeps its age.
        if (token && lifetimeMs > 0 && token !== held?.token) {
          held = { token, receivedAt: clock.now().getTime(), lifetimeMs };
        }
        return token;
      })
      .finally(() => {
        fetching = undefined;
      });
    return fetching;
  };
  return {
    async token() {
      const now = clock.now().getTime();
      if (!held || now >= held.receivedAt + held.lifetimeMs * USABLE_UNTIL) return fetchNew();
      if (now >= held.receivedAt + held.lifetimeMs * REFRESH_AT) {
        fetchNew().catch((err: Error) =>
          log.warn('cannot refresh the ID token; the current one is still valid', { audience, error: err.message }),
        );
      }
      return held.token;
    },
    invalidate(token) {
      if (held?.token === token) held = undefined;
      source.invalidate?.(token);
    },
  };
}
