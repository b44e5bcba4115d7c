import { Flags } from '@oclif/core';
import { outputFlag } from '../../lib/cli/flags.ts';
import { KrunCommand } from '../../lib/cli/krun-command.ts';
import { contextFlag, kubeconfigFlag } from '../../lib/setup/flags.ts';

export default class FnRbac extends KrunCommand {
  static override summary = 'Print or apply the RBAC that fn run needs';
  static override description =
    'The Role and RoleBinding a CI or Argo CD ServiceAccount needs to run KRM functions as Pods in NAMESPACE: pods create/get/watch/delete, pods/attach get+create, pods/log get, configmaps and networkpolicies create/delete. Prints YAML by default; --apply applies it (server-side apply: a second run changes nothing).';
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
    'dry-run': Flags.option({
      options: ['none', 'server'] as const,
      summary: 'server: have the API server validate --apply without persisting',
      default: 'none' as const,
    })(),
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
    if (!flags.apply) {
      await this.printObjects(fnRbacObjects(options), flags.output ?? 'yaml');
      return;
    }
    const applied = await applyFnRbac(options, this.context(flags), flags['dry-run'] === 'server');
    if (flags.output) await this.printObjects(applied, flags.output);
    else {
      const suffix = flags['dry-run'] === 'server' ? ' (server dry run)' : '';
      await this.write(
        applied
          .map((o) => `${o.kind.toLowerCase()}.rbac.authorization.k8s.io/${o.metadata.name} applied${suffix}\n`)
          .join(''),
      );
    }
  }
}
