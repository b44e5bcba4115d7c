import { Flags } from '@oclif/core';
import { outputFlag } from '../../lib/cli/flags.ts';
import { KrunCommand } from '../../lib/cli/krun-command.ts';
import { namespaceFlag, runtimeArg, selectorFlag, timeoutFlag, waitFlag } from '../../lib/runtime/flags.ts';
import { changeLines } from '../../lib/setup/apply.ts';
import { contextFlag, dryRunFlag, kubeconfigFlag } from '../../lib/setup/flags.ts';

export default class RuntimeInstallCommand extends KrunCommand {
  static override summary = 'Install a sandboxed runtime as a RuntimeClass';
  static override description =
    "Plans per node (see `krun runtime plan`), then applies the RuntimeClass (handler, node selector) and one installer Job per supported node. The Jobs hold no Kubernetes API token: krun passes each node's decision in. Run it again, or pass --wait, to label the nodes whose installer succeeded; only labelled nodes get the runtime's pods. With --daemonset, one DaemonSet per install profile runs the installer in an init container and keeps a pause container, so nodes that join later with the profile label are installed too. Idempotent.";
  static override examples = [
    '# Install Kontain on every supported node\n<%= config.bin %> <%= command.id %> kontain',
    '# Print every object it would apply, changing nothing\n<%= config.bin %> <%= command.id %> kontain --dry-run=client -o yaml',
    '# Install with DaemonSets and wait up to 10 minutes for every node\n<%= config.bin %> <%= command.id %> kontain --daemonset --wait --timeout 10m',
  ];
  static override args = { runtime: runtimeArg };
  static override flags = {
    selector: selectorFlag,
    namespace: namespaceFlag,
    'dry-run': dryRunFlag,
    daemonset: Flags.boolean({
      summary: 'Install with DaemonSets that cover nodes joining later',
      env: 'KRUN_DAEMONSET',
    }),
    wait: waitFlag,
    timeout: timeoutFlag,
    output: outputFlag(['json', 'yaml', 'name'] as const),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RuntimeInstallCommand);
    const { runtimeInstall } = await import('../../lib/runtime/install.ts');
    const result = await runtimeInstall(
      {
        runtime: args.runtime,
        selector: flags.selector,
        namespace: flags.namespace,
        dryRun: flags['dry-run'] ?? 'none',
        daemonset: flags.daemonset,
        waitMs: flags.wait ? flags.timeout : undefined,
        kubeconfig: flags.kubeconfig,
        context: flags.context,
      },
      this.context(flags),
    );
    if (flags.output) await this.printObjects(result.objects, flags.output);
    else await this.write(changeLines(result.changes, result.dryRun));
    if (result.failure) throw result.failure;
  }
}
