import { Args, Flags } from '@oclif/core';
import { outputFlag } from '../lib/cli/flags.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { changeLines } from '../lib/setup/apply.ts';
import {
  configMapFlag,
  contextFlag,
  dryRunFlag,
  kubeconfigFlag,
  projectFlag,
  secretFlag,
  yesFlag,
} from '../lib/setup/flags.ts';

export default class SetupNamespace extends KrunCommand {
  static override summary = 'Prepare a namespace and its Google identity';
  static override description =
    'Creates (or reuses) the Google service account k8s-NAMESPACE@PROJECT.iam.gserviceaccount.com, grants it roles/container.clusterViewer on the project, and applies the namespace, its ServiceAccount and the least-privilege RBAC `krun run` needs when it authenticates as that account. Idempotent: a second run changes nothing and says so.';
  static override examples = [
    '# Set up namespace "fortio" in project my-project, granting the IAM roles without asking\n<%= config.bin %> <%= command.id %> fortio --project my-project --yes',
    '# Print the objects it would apply, changing nothing\n<%= config.bin %> <%= command.id %> fortio --project my-project --dry-run=client -o yaml',
    '# Also let two operators invoke Cloud Run services in the project\n<%= config.bin %> <%= command.id %> fortio --project my-project --invoker alice@example.com,bob@example.com',
  ];
  static override args = {
    namespace: Args.string({ description: 'Kubernetes namespace to set up (asked for on a terminal when omitted)' }),
  };
  static override flags = {
    project: projectFlag,
    'service-account': Flags.string({
      summary: "The workload's Kubernetes ServiceAccount (default: default)",
      env: 'KRUN_SERVICE_ACCOUNT',
    }),
    'config-map': configMapFlag,
    secret: secretFlag,
    invoker: Flags.string({
      summary: 'Grant roles/run.invoker on the project to these operators',
      env: 'KRUN_INVOKER',
      multiple: true,
      delimiter: ',',
    }),
    'dry-run': dryRunFlag,
    yes: yesFlag,
    output: outputFlag(['json', 'yaml', 'name'] as const),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SetupNamespace);
    const { setupNamespace } = await import('../lib/setup/namespace.ts');
    const result = await setupNamespace(
      {
        namespace: args.namespace,
        project: flags.project,
        serviceAccount: flags['service-account'],
        configMaps: flags['config-map'],
        secrets: flags.secret,
        invokers: flags.invoker,
        dryRun: flags['dry-run'] ?? 'none',
        yes: flags.yes,
        kubeconfig: flags.kubeconfig,
        context: flags.context,
      },
      this.context(flags),
    );
    if (flags.output) await this.printObjects(result.objects, flags.output);
    else await this.write(changeLines(result.changes, result.dryRun));
  }
}
