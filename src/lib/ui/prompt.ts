// The one place krun asks questions: inquirer on stderr, reading the command's stdin, cancelled by its signal. Only
// for interactive runs; services check `ctx.interactive` and throw NonInteractiveError (naming the flag) otherwise.
import type { KrunContext } from '../context.ts';
import { CancelledError } from '../errors.ts';

export interface Prompter {
  input(message: string, options?: { default?: string; validate?: (value: string) => true | string }): Promise<string>;
  confirm(message: string, defaultAnswer: boolean): Promise<boolean>;
}

function cancelled(err: unknown): unknown {
  const name = (err as { name?: string } | undefined)?.name;
  return name === 'ExitPromptError' || name === 'AbortPromptError' ? new CancelledError('cancelled') : err;
}

const promptContext = (ctx: KrunContext) => ({
  input: ctx.streams.in,
  output: ctx.streams.err,
  signal: ctx.signal,
  clearPromptOnDone: false,
});

/** inquirer, loaded on first use, rendering to stderr. */
export function inquirerPrompter(ctx: KrunContext): Prompter {
  const context = promptContext(ctx);
  return {
    async input(message, options = {}) {
      const { input } = await import('@inquirer/prompts');
      return input({ message, ...options, required: true }, context).catch((err) => Promise.reject(cancelled(err)));
    },
    async confirm(message, defaultAnswer) {
      const { confirm } = await import('@inquirer/prompts');
      return confirm({ message, default: defaultAnswer }, context).catch((err) => Promise.reject(cancelled(err)));
    },
  };
}

export interface Choice<T> {
  readonly name: string;
  readonly value: T;
  readonly description?: string;
}

/** One of `choices`, picked with the arrow keys and enter (inquirer's select on stderr). */
export async function choose<T>(ctx: KrunContext, message: string, choices: readonly Choice<T>[]): Promise<T> {
  const { select } = await import('@inquirer/prompts');
  return select({ message, choices: [...choices] }, promptContext(ctx)).catch((err) => Promise.reject(cancelled(err)));
}
