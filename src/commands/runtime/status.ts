import { outputFlag } from '../../lib/cli/flags.ts';
import { KrunCommand } from '../../lib/cli/krun-command.ts';
import { namespaceFlag, runtimeArg, selectorFlag } from '../../lib/runtime/flags.ts';
import { contextFlag, kubeconfigFlag } from '../../lib/setup/flags.ts';

export default class RuntimeStatusCommand extends KrunCommand {
  static override summary = "Show each node's sandboxed runtime and installer";
  static override description =
    "Prints the RuntimeClass, the installer DaemonSets, and per node: its container runtime, how krun installs there, whether it carries the runtime's label (only labelled nodes get the runtime's pods), and its last installer (install or revert Job, or DaemonSet pod) with the result and what to do next. Changes nothing.";
  static override examples = [
    '# Where is Kontain installed?\n<%= config.bin %> <%= command.id %> kontain',
    '# The same for one pool, as YAML\n<%= config.bin %> <%= command.id %> kontain -l pool=sandbox -o yaml',
  ];
  static override args = { runtime: runtimeArg };
  static override flags = {
    selector: selectorFlag,
    namespace: namespaceFlag,
    output: outputFlag(['json', 'yaml'] as const),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RuntimeStatusCommand);
    const { runtimeStatus, formatStatus } = await import('../../lib/runtime/status.ts');
    const status = await runtimeStatus(
      {
        runtime: args.runtime,
        selector: flags.selector,
        namespace: flags.namespace,
        kubeconfig: flags.kubeconfig,
        context: flags.context,
      },
      this.context(flags),
    );
    if (flags.output) await this.printObjects([status], flags.output);
    else await this.write(formatStatus(status));
  }
}
