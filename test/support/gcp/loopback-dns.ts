// Keeps Google host names on loopback. `*.run.app`, `*.googleapis.com` and `metadata.google.internal` resolve to
// 127.0.0.1 in this process (dns.lookup, which net, tls, http(s), http2 and fetch use), and, when
// KRUN_TEST_RUN_APP_PORT is set, connections to port 443 of a `*.run.app` host go to the emulator's front-end port
// instead, so a Cloud Run URL without a port (as the Admin API reports it) works unchanged. Likewise port 443 of
// `oauth2.googleapis.com` goes to KRUN_TEST_OAUTH2_PORT (the emulator's HTTPS token endpoint), where
// google-auth-library sends service account key grants whatever the key file's `token_uri`.
//
// In a child process: `node --import <this file>` (or NODE_OPTIONS="--import=<this file>"); the emulator's env()
// sets it up. In the test process itself: installLoopbackDns({ runAppPort }).
import dns from 'node:dns';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

const LOOPBACK_NAMES = /(^|\.)(run\.app|googleapis\.com)\.?$|^metadata\.google\.internal\.?$/i;
const RUN_APP = /(^|\.)run\.app\.?$/i;
const OAUTH2 = /^oauth2\.googleapis\.com\.?$/i;

export const RUN_APP_PORT_ENV = 'KRUN_TEST_RUN_APP_PORT';
export const OAUTH2_PORT_ENV = 'KRUN_TEST_OAUTH2_PORT';

interface Redirects {
  runAppPort: number | undefined;
  oauth2Port: number | undefined;
}

export function isLoopbackName(host: string): boolean {
  return LOOPBACK_NAMES.test(host);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;
type Lookup = (hostname: string, options: unknown, callback: LookupCallback) => void;

let installed: Redirects | undefined;

/** Idempotent; a later call only changes the front-end and token endpoint ports. */
export function installLoopbackDns({
  runAppPort,
  oauth2Port,
}: {
  runAppPort?: number;
  oauth2Port?: number;
} = {}): void {
  if (installed) {
    installed.runAppPort = runAppPort ?? installed.runAppPort;
    installed.oauth2Port = oauth2Port ?? installed.oauth2Port;
    return;
  }
  const state: Redirects = { runAppPort, oauth2Port };
  installed = state;

  const originalLookup = dns.lookup as unknown as Lookup;
  const lookup = function (this: unknown, hostname: string, options: unknown, callback?: LookupCallback) {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const opts = (typeof options === 'object' && options !== null ? options : {}) as { all?: boolean; family?: number };
    if (!isLoopbackName(hostname)) return originalLookup.call(this, hostname, options, callback as LookupCallback);
    const six = opts.family === 6;
    const address = six ? '::1' : '127.0.0.1';
    const family = six ? 6 : 4;
    process.nextTick(() => (opts.all ? cb(null, [{ address, family }]) : cb(null, address, family)));
    return {};
  };
  (dns as unknown as { lookup: unknown }).lookup = lookup;
  const promises = dns.promises as unknown as { lookup: (host: string, options?: unknown) => Promise<unknown> };
  const originalPromiseLookup = promises.lookup;
  promises.lookup = (hostname: string, options?: unknown) => {
    if (!isLoopbackName(hostname)) return originalPromiseLookup.call(dns.promises, hostname, options);
    const opts = (typeof options === 'object' && options !== null ? options : {}) as { all?: boolean };
    return Promise.resolve(opts.all ? [{ address: '127.0.0.1', family: 4 }] : { address: '127.0.0.1', family: 4 });
  };

  // `import { lookup } from 'node:dns'` bindings follow the patched functions too.
  syncBuiltinESMExports();

  // Every TCP client (net.connect, tls.connect, http, https, http2, fetch) ends in Socket#connect with an options
  // object, or net's normalised [options, callback] array.
  const socketProto = net.Socket.prototype as unknown as { connect: (...args: unknown[]) => unknown };
  const originalConnect = socketProto.connect;
  socketProto.connect = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const options = (Array.isArray(first) ? first[0] : first) as { host?: unknown; port?: unknown } | undefined;
    if (options && typeof options === 'object' && typeof options.host === 'string' && Number(options.port) === 443) {
      const port = RUN_APP.test(options.host)
        ? state.runAppPort
        : OAUTH2.test(options.host)
          ? state.oauth2Port
          : undefined;
      if (port !== undefined) options.port = port;
    }
    return originalConnect.apply(this, args);
  };
}

// As a preload (`--import`), install at once with the ports from the environment.
if (
  process.env[RUN_APP_PORT_ENV] !== undefined ||
  process.env[OAUTH2_PORT_ENV] !== undefined ||
  process.env.KRUN_TEST_LOOPBACK_DNS === '1'
) {
  const port = (name: string) => {
    const n = Number(process.env[name]);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  };
  installLoopbackDns({ runAppPort: port(RUN_APP_PORT_ENV), oauth2Port: port(OAUTH2_PORT_ENV) });
}
