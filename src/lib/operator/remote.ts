// A remote command or shell over an SSH connection, as `krun exec` and `krun ssh` run it: stdout and stderr kept
// apart, stdin forwarded when asked, a PTY (raw local terminal, window size followed) when asked and possible, and
// the remote exit status returned (128 + n when a signal killed it).
import { constants } from 'node:os';
import type { ClientChannel, PseudoTtyOptions } from 'ssh2';
import type { KrunContext } from '../context.ts';
import { TransportError } from '../errors.ts';
import type { SshConnection } from './ssh-connect.ts';

export interface RemoteOptions {
  /** The command line; undefined runs the login shell. */
  readonly command?: string | undefined;
  /** Forward local stdin (kubectl's -i). */
  readonly stdin: boolean;
  /** Ask for a PTY (needs a terminal on stdin). */
  readonly tty: boolean;
}

const SAFE = /^[\w@%+=:,./-]+$/;

/** argv as one POSIX shell command line (the SSH protocol carries a string); the server's shell splits it back. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map((a) => (SAFE.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

function signalStatus(signal: string): number {
  const n = (constants.signals as Record<string, number>)[`SIG${signal.replace(/^SIG/, '')}`];
  return 128 + (n ?? 0);
}

export async function runRemote(conn: SshConnection, options: RemoteOptions, ctx: KrunContext): Promise<number> {
  const { in: stdin, out, err } = ctx.streams;
  const tty = options.tty && stdin.isTTY === true;
  const outTty = out as typeof out & { columns?: number; rows?: number };
  const pty: PseudoTtyOptions | false = tty
    ? { term: ctx.env.TERM || 'xterm-256color', cols: outTty.columns ?? 80, rows: outTty.rows ?? 24 }
    : false;
  let status: number | undefined;
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    const done = (e: Error | undefined, ch: ClientChannel) => {
      if (e) return reject(new TransportError(`the server refused the session: ${e.message}`, { cause: e }));
      // The exit status may arrive in the same packet batch as the reply: listen before anything awaits.
      ch.on('exit', (code: number | null, signal?: string) => {
        status = code ?? (signal ? signalStatus(signal) : undefined);
      });
      resolve(ch);
    };
    if (options.command === undefined) conn.client.shell(pty, done);
    else conn.client.exec(options.command, { pty }, done);
  });
  const raw = stdin as typeof stdin & { setRawMode?: (on: boolean) => void };
  if (tty) raw.setRawMode?.(true);
  const onResize = () => channel.setWindow(outTty.rows ?? 24, outTty.columns ?? 80, 0, 0);
  if (tty) out.on('resize', onResize);
  channel.pipe(out, { end: false });
  channel.stderr.pipe(err, { end: false });
  if (options.stdin) {
    stdin.pipe(channel);
  } else {
    channel.end();
  }
  const onAbort = () => channel.close();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let broken: Error | undefined;
  conn.client.on('error', (e: Error) => {
    broken = e;
    channel.destroy();
  });
  await new Promise<void>((resolve) => channel.once('close', () => resolve()));
  ctx.signal.removeEventListener('abort', onAbort);
  if (tty) {
    raw.setRawMode?.(false);
    out.off('resize', onResize);
  }
  if (options.stdin) {
    stdin.unpipe(channel);
    stdin.pause();
  }
  if (ctx.signal.aborted) throw ctx.signal.reason;
  if (status === undefined) {
    throw new TransportError(
      broken ? `the connection broke: ${broken.message}` : 'the session ended without an exit status',
    );
  }
  return status;
}
