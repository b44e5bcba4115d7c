// Flags shared by commands, with one meaning everywhere (kubectl's short letters) and an environment twin each,
// because `krun run` is configured by container environment variables.
import { Flags } from '@oclif/core';
import type { OutputFormat } from '../output/printer.ts';

export const globalFlags = {
  verbose: Flags.boolean({
    char: 'v',
    summary: 'Log debug detail to stderr (tokens are always redacted)',
    env: 'KRUN_VERBOSE',
    helpGroup: 'GLOBAL',
  }),
  'log-format': Flags.option({
    options: ['human', 'json'] as const,
    summary: 'Log line format on stderr; default: human on a terminal, json otherwise',
    env: 'KRUN_LOG_FORMAT',
    helpGroup: 'GLOBAL',
  })(),
};

/** `-o/--output` limited to the formats a command can print. Unset means the command's human output. */
export function outputFlag<const T extends readonly OutputFormat[]>(formats: T) {
  return Flags.option({
    char: 'o',
    options: formats,
    summary: `Print the result as ${formats.join(', ')} instead of human text`,
    env: 'KRUN_OUTPUT',
  })();
}
