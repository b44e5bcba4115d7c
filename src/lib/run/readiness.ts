// Waits for the app to be ready before krun opens its own port (HBONE), so Cloud Run and the mesh see the instance
// as listening only once it can serve: startupProbe.http (200), else startupProbe.tcp, else the app's port.
import { connect } from 'node:net';
import type { Clock } from '../context.ts';
import { KrunError } from '../errors.ts';
import { parseHostPort } from '../net/address.ts';

export interface Probe {
  readonly description: string;
  check(signal: AbortSignal): Promise<boolean>;
}

const ATTEMPT_TIMEOUT_MS = 1000;

export function httpProbe(url: string): Probe {
  return {
    description: `GET ${url} answering 200`,
    async check(signal) {
      try {
        const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]) });
        await res.body?.cancel();
        return res.status === 200;
      } catch {
        return false;
      }
    },
  };
}

export function tcpProbe(address: string): Probe {
  const { host, port } = parseHostPort(address) ?? { host: address, port: 0 };
  return {
    description: `a TCP connection to ${address}`,
    check: () =>
      new Promise((resolve) => {
        const socket = connect({ host, port, timeout: ATTEMPT_TIMEOUT_MS });
        const done = (ok: boolean) => {
          socket.destroy();
          resolve(ok);
        };
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
        socket.once('timeout', () => done(false));
      }),
  };
}

export class NotReadyError extends KrunError {}

/**
 * Polls `probe` until it passes ('ready'), or until `appExited` settles first ('exited': an app that ended is not
 * going to become ready, and its status is what counts). Fails when `timeoutMs` passes.
 */
export async function waitReady(
  probe: Probe,
  options: { timeoutMs: number; clock: Clock; signal: AbortSignal; appExited?: Promise<number>; intervalMs?: number },
): Promise<'ready' | 'exited'> {
  const { clock, signal } = options;
  const deadline = clock.now().getTime() + options.timeoutMs;
  let exited: number | undefined;
  void options.appExited?.then((s) => {
    exited = s;
  });
  for (;;) {
    if (exited !== undefined) return 'exited';
    if (await probe.check(signal)) return 'ready';
    if (clock.now().getTime() >= deadline) {
      throw new NotReadyError(
        `the app was not ready after ${options.timeoutMs / 1000} s (waited for ${probe.description})`,
        {
          hints: [
            'check that the app listens on that port (PORT_http / --app-port, startupProbe.http, startupProbe.tcp)',
            'raise KRUN_STARTUP_TIMEOUT if it needs longer to start',
            'PORT_http=- skips the wait',
          ],
        },
      );
    }
    await clock.sleep(options.intervalMs ?? 100, signal);
  }
}
