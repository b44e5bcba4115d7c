import { outputFlag } from '../../lib/cli/flags.ts';
import { KrunCommand } from '../../lib/cli/krun-command.ts';
import { runtimeArg, selectorFlag } from '../../lib/runtime/flags.ts';
import { contextFlag, kubeconfigFlag } from '../../lib/setup/flags.ts';

export default class RuntimePlanCommand extends KrunCommand {
  static override summary = 'Show how a sandboxed runtime would be installed';
  static override description =
    "Reads every Node's container runtime (status.nodeInfo.containerRuntimeVersion), OS, architecture and labels, and prints per node what `krun runtime install` would do there: containerd 1.x (edit config.toml with a backup), containerd 2.x (a drop-in it imports) or CRI-O (a crio.conf.d file), or why the node is unsupported. Changes nothing.";
  static override examples = [
    '# How would Kontain be installed on each node?\n<%= config.bin %> <%= command.id %> kontain',
    '# Only the nodes of one pool, as YAML\n<%= config.bin %> <%= command.id %> kontain -l pool=sandbox -o yaml',
  ];
  static override args = { runtime: runtimeArg };
  static override flags = {
    selector: selectorFlag,
    output: outputFlag(['json', 'yaml'] as const),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RuntimePlanCommand);
    const { runtimePlan } = await import('../../lib/runtime/plan-service.ts');
    const { formatPlan } = await import('../../lib/runtime/plan.ts');
    const plan = await runtimePlan(
      { runtime: args.runtime, selector: flags.selector, kubeconfig: flags.kubeconfig, context: flags.context },
      this.context(flags),
    );
    if (flags.output) await this.printObjects([plan], flags.output);
    else await this.write(formatPlan(plan));
  }
}
