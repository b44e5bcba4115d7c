// Flags the runtime commands share, each with its KRUN_ environment twin.
import { Args, Flags } from '@oclif/core';
import { parseDuration } from '../cli/duration.ts';

export const runtimeArg = Args.string({
  description: 'The runtime: kontain',
  required: true,
});

export const selectorFlag = Flags.string({
  char: 'l',
  summary: 'Only nodes matching this label selector (kubectl -l syntax)',
  env: 'KRUN_SELECTOR',
});

export const namespaceFlag = Flags.string({
  char: 'n',
  summary: 'Namespace of the installer Jobs and DaemonSets (default: kube-system)',
  env: 'KRUN_NAMESPACE',
});

export const waitFlag = Flags.boolean({
  summary: 'Wait for the installers to finish, then label or unlabel the nodes',
  env: 'KRUN_WAIT',
});

export const timeoutFlag = Flags.custom<number>({
  summary: 'How long --wait waits, e.g. 90s or 10m',
  env: 'KRUN_TIMEOUT',
  default: 5 * 60_000,
  defaultHelp: async () => '5m',
  parse: async (input) => parseDuration(input),
})();
