import { KrunCommand } from '../../lib/cli/krun-command.ts';
import { namespaceFlag, runtimeArg, selectorFlag, timeoutFlag, waitFlag } from '../../lib/runtime/flags.ts';
import { changeLines } from '../../lib/setup/apply.ts';
import { contextFlag, dryRunFlag, kubeconfigFlag } from '../../lib/setup/flags.ts';

export default class RuntimeUninstallCommand extends KrunCommand {
  static override summary = 'Revert nodes and remove the RuntimeClass';
  static override description =
    "For every selected node krun installed on, applies a revert Job that restores the container runtime's configuration from the installer's backup and removes the runtime's files, and takes the node out of the installer DaemonSets. Run it again (or pass --wait) to remove the label of each node whose revert succeeded; DaemonSets no node uses, and the RuntimeClass once no node is labelled, are deleted. Idempotent.";
  static override examples = [
    '# Remove Kontain from every node, waiting for the revert Jobs\n<%= config.bin %> <%= command.id %> kontain --wait',
    '# Only one pool; the RuntimeClass stays while other nodes are labelled\n<%= config.bin %> <%= command.id %> kontain -l pool=sandbox',
  ];
  static override args = { runtime: runtimeArg };
  static override flags = {
    selector: selectorFlag,
    namespace: namespaceFlag,
    'dry-run': dryRunFlag,
    wait: waitFlag,
    timeout: timeoutFlag,
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RuntimeUninstallCommand);
    const { runtimeUninstall } = await import('../../lib/runtime/uninstall.ts');
    const result = await runtimeUninstall(
      {
        runtime: args.runtime,
        selector: flags.selector,
        namespace: flags.namespace,
        dryRun: flags['dry-run'] ?? 'none',
        waitMs: flags.wait ? flags.timeout : undefined,
        kubeconfig: flags.kubeconfig,
        context: flags.context,
      },
      this.context(flags),
    );
    await this.write(changeLines(result.changes, result.dryRun));
    if (result.failure) throw result.failure;
  }
}
