// A value the command needs: taken from its flag, asked for on a terminal, or a NonInteractiveError naming the flag.
import type { KrunContext } from '../context.ts';
import { NonInteractiveError } from '../errors.ts';
import type { Prompter } from '../ui/prompt.ts';

export interface Needed {
  /** "Namespace": the question, and (lowercased) the error's subject. */
  readonly question: string;
  /** What to pass without a terminal: "--project (or KRUN_PROJECT)". */
  readonly flag: string;
  readonly validate?: (value: string) => void;
}

export async function required(
  value: string | undefined,
  what: Needed,
  ctx: KrunContext,
  prompter: Prompter,
): Promise<string> {
  if (value) return value;
  if (!ctx.interactive) {
    throw new NonInteractiveError(
      `${what.question.toLowerCase()} is required in a non-interactive run: pass ${what.flag}`,
    );
  }
  return prompter.input(what.question, {
    validate: (v) => {
      try {
        what.validate?.(v);
        return true;
      } catch (err) {
        return (err as Error).message;
      }
    },
  });
}
