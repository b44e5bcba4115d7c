// Flags the setup commands share, each with its KRUN_ environment twin.
import { Flags } from '@oclif/core';

export const projectFlag = Flags.string({
  summary: 'Google Cloud project (default: CLOUDSDK_CORE_PROJECT or GOOGLE_CLOUD_PROJECT)',
  env: 'KRUN_PROJECT',
});

export const dryRunFlag = Flags.option({
  options: ['none', 'client', 'server'] as const,
  summary: 'client: print what would change, send nothing; server: have the API servers validate',
  env: 'KRUN_DRY_RUN',
})();

export const yesFlag = Flags.boolean({
  char: 'y',
  summary: 'Make IAM changes without asking',
  env: 'KRUN_YES',
});

export const kubeconfigFlag = Flags.string({
  summary: 'Kubeconfig file (default: KUBECONFIG, then ~/.kube/config)',
  env: 'KRUN_KUBECONFIG',
});

export const contextFlag = Flags.string({
  summary: 'Kubeconfig context (default: the current context)',
  env: 'KRUN_CONTEXT',
});

/** The launcher's reads, limited to names (setup-namespace grants exactly these; doctor checks exactly these). */
export const configMapFlag = Flags.string({
  summary: 'ConfigMaps the workload reads (default: any in the namespace)',
  env: 'KRUN_CONFIG_MAP',
  multiple: true,
  delimiter: ',',
});

export const secretFlag = Flags.string({
  summary: 'Secrets the workload reads (default: any in the namespace)',
  env: 'KRUN_SECRET',
  multiple: true,
  delimiter: ',',
});
