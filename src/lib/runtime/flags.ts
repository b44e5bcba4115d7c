// Flags the runtime commands share, each with its KRUN_ environment twin.
import { Args, Flags } from '@oclif/core';

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
