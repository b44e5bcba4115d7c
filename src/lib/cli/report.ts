// Turns any error into what the user sees on stderr and the exit status: `error: …`, then `Try:` steps.
import { CancelledError, ExitCode, ExitStatusError, KrunError } from '../errors.ts';
import { redactString } from '../log/redact.ts';

export interface Report {
  /** What goes to stderr; empty when the status says it all. */
  readonly text: string;
  readonly exitCode: number;
}

interface OclifError {
  readonly message: string;
  readonly code?: string;
  readonly oclif?: { readonly exit?: number };
  /** Present on every argument/flag parsing error, some of which oclif leaves at its default exit status. */
  readonly parse?: unknown;
}

function isOclifError(err: unknown): err is OclifError {
  return err instanceof Error && typeof (err as OclifError).oclif?.exit === 'number';
}

/** Node's system errors, translated into the sentence and the fix a user needs. */
function systemHints(err: NodeJS.ErrnoException): string[] {
  switch (err.code) {
    case 'ECONNREFUSED':
      return ['check the address and port, and that the server is running'];
    case 'ENOTFOUND':
      return ['check the host name; krun only resolves names your system resolver knows'];
    case 'EADDRINUSE':
      return ['another process listens on that port: stop it, or choose another port (e.g. KRUN_HBONE_PORT)'];
    case 'EACCES':
    case 'EPERM':
      return ['check the file permissions, or run as a user allowed to do this'];
    default:
      return [];
  }
}

export function format(message: string, hints: readonly string[]): string {
  const tryBlock = hints.length > 0 ? `\nTry:\n${hints.map((h) => `  ${h}\n`).join('')}` : '';
  return redactString(`error: ${message}\n${tryBlock}`);
}

/** `commandId` names the command for the usage hint (`krun <id> --help`). */
export function report(err: unknown, bin: string, commandId?: string): Report {
  if (err instanceof ExitStatusError || err instanceof CancelledError) return { text: '', exitCode: err.exitCode };
  if (err instanceof KrunError) return { text: format(err.message, err.hints), exitCode: err.exitCode };
  if (isOclifError(err)) {
    // oclif's own exit (this.exit(n)) carries no message worth printing.
    if (err.code === 'EEXIT') return { text: '', exitCode: err.oclif?.exit ?? ExitCode.failure };
    const exitCode = err.parse === undefined ? (err.oclif?.exit ?? ExitCode.failure) : ExitCode.usage;
    const help = commandId ? `${bin} ${commandId} --help` : `${bin} --help`;
    const message = err.message.replace(/\s*See more help with --help\s*$/, '');
    return { text: format(message, exitCode === ExitCode.usage ? [help] : []), exitCode };
  }
  if (err instanceof Error) {
    const hints = systemHints(err as NodeJS.ErrnoException);
    return { text: format(err.message, hints), exitCode: ExitCode.failure };
  }
  return { text: format(String(err), []), exitCode: ExitCode.failure };
}
