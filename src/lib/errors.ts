// Typed errors: each carries its exit status and the steps that fix it. Only the CLI entry point turns them into
// text and an exit code (see cli/main.ts); services throw them and never exit.

/** The documented exit statuses (README "Exit codes"). */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** `fn run`, `docker run`: the function's Pod could not be run (docker's own code for "the daemon failed"). */
  fnRuntime: 125,
  interrupted: 130,
  transport: 255,
} as const;

export interface KrunErrorOptions {
  /** Steps that fix the problem, printed under "Try:". */
  readonly hints?: readonly string[];
  readonly cause?: unknown;
}

export class KrunError extends Error {
  readonly exitCode: number = ExitCode.failure;
  readonly hints: readonly string[];

  constructor(message: string, options: KrunErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hints = options.hints ?? [];
  }
}

/** Bad or missing arguments and flags: exit 2. */
export class UsageError extends KrunError {
  override readonly exitCode: number = ExitCode.usage;
}

/** A run without a terminal needs a flag that an interactive run would have asked for: exit 2. */
export class NonInteractiveError extends UsageError {}

export class NotFoundError extends KrunError {}

export class PermissionError extends KrunError {}

export class AuthError extends KrunError {}

/** The tunnel or transport to a workload failed (OpenSSH's 255). */
export class TransportError extends KrunError {
  override readonly exitCode: number = ExitCode.transport;
}

/** SIGINT/SIGTERM or a cancelled prompt: exit 130, nothing printed beyond one line. */
export class CancelledError extends KrunError {
  override readonly exitCode: number = ExitCode.interrupted;
  /** The signal that cancelled, so a supervisor can forward the same one. */
  readonly signal: NodeJS.Signals | undefined;
  constructor(reason = 'interrupted', signal?: NodeJS.Signals) {
    super(reason);
    this.signal = signal;
  }
}

/** A remote command or supervised app ended with this status; krun passes it through and prints nothing. */
export class ExitStatusError extends KrunError {
  override readonly exitCode: number;
  constructor(status: number) {
    super(`exited with status ${status}`);
    this.exitCode = status;
  }
}
