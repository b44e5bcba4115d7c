// `krun exec` and `krun ssh`: one SSH connection over an HBONE tunnel, one command or shell, its exit status.
import type { KrunContext } from '../context.ts';
import { runRemote, shellJoin } from './remote.ts';
import { connectSsh, type SshOptions } from './ssh-connect.ts';

export interface ExecOptions extends SshOptions {
  readonly stdin: boolean;
  readonly tty: boolean;
}

/** Like kubectl exec: argv exactly (quoted for the remote shell); returns the remote status. */
export async function runExec(
  target: string | undefined,
  argv: readonly string[],
  options: ExecOptions,
  ctx: KrunContext,
): Promise<number> {
  if (options.tty && ctx.streams.in.isTTY !== true) {
    ctx.log.warn('Unable to use a TTY - input is not a terminal or the right kind of file');
  }
  const conn = await connectSsh(target, options, ctx);
  try {
    return await runRemote(conn, { command: shellJoin(argv), stdin: options.stdin, tty: options.tty }, ctx);
  } finally {
    await conn.close();
  }
}

export interface SshCommandOptions extends SshOptions {
  /** -t: force a PTY even for a command; -T: never (default: a PTY for a shell on a terminal). */
  readonly tty?: boolean | undefined;
}

/** Like ssh: a shell (a PTY when stdin is a terminal) or the command line; says which instance it reached. */
export async function runSsh(
  target: string | undefined,
  command: readonly string[],
  options: SshCommandOptions,
  ctx: KrunContext,
): Promise<number> {
  const conn = await connectSsh(target, options, ctx);
  try {
    const where = conn.target.service
      ? `Cloud Run service ${conn.target.service.name} (${conn.target.origin.origin})`
      : conn.target.origin.origin;
    ctx.log.info(`Connected to ${where}, instance ${conn.instance ?? 'unknown'}, host key ${conn.hostKey}`);
    const shell = command.length === 0;
    return await runRemote(
      conn,
      {
        command: shell ? undefined : command.join(' '),
        stdin: true,
        tty: options.tty ?? shell,
      },
      ctx,
    );
  } finally {
    await conn.close();
  }
}
