import { Flags } from '@oclif/core';
import { outputFlag } from '../../lib/cli/flags.ts';
import { KrunCommand } from '../../lib/cli/krun-command.ts';
import { resourceName } from '../../lib/output/printer.ts';
import { contextFlag, dryRunFlag, kubeconfigFlag } from '../../lib/setup/flags.ts';

export default class FnRbac extends KrunCommand {
  static override summary = 'Print or apply the RBAC that fn run needs';
  static override description =
    'The Role and RoleBinding a CI or Argo CD ServiceAccount needs to run KRM functions as Pods in NAMESPACE: pods create/get/watch/delete, pods/attach get+create, pods/log get, configmaps and networkpolicies create/delete. Prints YAML by default; --apply applies it (server-side apply), saying per object created, updated or unchanged.';
  static override examples = [
    "# Let Argo CD's repo server run functions in namespace krm-fn\n<%= config.bin %> <%= command.id %> -n krm-fn --service-account argocd:argocd-repo-server --apply",
    '# Review the objects first\n<%= config.bin %> <%= command.id %> -n krm-fn --service-account ci:deployer',
  ];
  static override flags = {
    namespace: Flags.string({
      char: 'n',
      summary: 'Namespace where the functions run',
      env: 'KRUN_NAMESPACE',
      required: true,
    }),
    'service-account': Flags.string({
      summary: 'Who may run functions: NAMESPACE:NAME, or NAME in --namespace',
      required: true,
    }),
    name: Flags.string({ summary: 'Name of the Role and RoleBinding', default: 'krun-fn' }),
    apply: Flags.boolean({ summary: 'Apply the objects instead of printing them' }),
    'dry-run': dryRunFlag,
    output: outputFlag(['json', 'yaml', 'name'] as const),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(FnRbac);
    const { applyFnRbac, fnRbacObjects } = await import('../../lib/fn/rbac.ts');
    const options = {
      namespace: flags.namespace,
      serviceAccount: flags['service-account'],
      name: flags.name,
      kubeconfig: flags.kubeconfig,
      context: flags.context,
    };
    const objects = fnRbacObjects(options);
    const dryRun = flags['dry-run'] ?? 'none';
    const { changeLines } = await import('../../lib/setup/apply.ts');
    const changes = !flags.apply
      ? []
      : dryRun === 'client'
        ? objects.map((o) => ({ name: resourceName(o), verb: 'configured' }))
        : await applyFnRbac(options, this.context(flags), dryRun);
    if (!flags.apply || flags.output) await this.printObjects(objects, flags.output ?? 'yaml');
    else await this.write(changeLines(changes, dryRun));
  }
}
