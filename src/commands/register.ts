import { Args, Flags } from '@oclif/core';
import { outputFlag } from '../lib/cli/flags.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { changeLines } from '../lib/setup/apply.ts';
import { contextFlag, dryRunFlag, kubeconfigFlag, projectFlag } from '../lib/setup/flags.ts';

export default class Register extends KrunCommand {
  static override summary = 'Let mesh workloads call a Cloud Run service';
  static override description =
    "Applies a Service, a WorkloadEntry at the gate, a ServiceEntry and DestinationRules (the original's SNI-service template) so that mesh workloads reach Cloud Run service SERVICE as SERVICE.NAMESPACE.svc through the gate. The service's URL comes from the Cloud Run Admin API (or --url), the gate's address from the cluster (or --gate-address). Every object is labelled krun.dev/registration=SERVICE; --unregister deletes exactly those.";
  static override examples = [
    '# Register Cloud Run service fortio (region us-central1) in namespace fortio\n<%= config.bin %> <%= command.id %> fortio -n fortio --project my-project --region us-central1',
    '# Print the objects, changing nothing\n<%= config.bin %> <%= command.id %> fortio -n fortio --region us-central1 --dry-run=client -o yaml',
    '# Remove the registration\n<%= config.bin %> <%= command.id %> fortio -n fortio --unregister',
  ];
  static override args = {
    service: Args.string({ description: 'Cloud Run service name (asked for on a terminal when omitted)' }),
  };
  static override flags = {
    namespace: Flags.string({
      char: 'n',
      summary: "Namespace of the objects (default: the kubeconfig context's, else default)",
      env: 'KRUN_NAMESPACE',
    }),
    project: projectFlag,
    region: Flags.string({
      summary: "The Cloud Run service's region (default: CLOUDSDK_RUN_REGION)",
      env: 'KRUN_REGION',
    }),
    url: Flags.string({
      summary: 'The Cloud Run URL, instead of asking the Admin API',
      env: 'KRUN_URL',
    }),
    'gate-address': Flags.string({
      summary: "The gate's address (default: read from istio-system)",
      env: 'KRUN_GATE_ADDRESS',
    }),
    'gate-port': Flags.integer({
      summary: "The gate's SNI port (default: 15442)",
      env: 'KRUN_GATE_PORT',
      min: 1,
      max: 65535,
    }),
    'service-account': Flags.string({
      summary: 'The Kubernetes ServiceAccount the Cloud Run service runs as (default: default)',
      env: 'KRUN_SERVICE_ACCOUNT',
    }),
    unregister: Flags.boolean({
      summary: 'Delete the objects an earlier register created',
      env: 'KRUN_UNREGISTER',
    }),
    'dry-run': dryRunFlag,
    output: outputFlag(['json', 'yaml', 'name'] as const),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Register);
    const { register } = await import('../lib/setup/register.ts');
    const result = await register(
      {
        service: args.service,
        namespace: flags.namespace,
        project: flags.project,
        region: flags.region,
        url: flags.url,
        gateAddress: flags['gate-address'],
        gatePort: flags['gate-port'],
        serviceAccount: flags['service-account'],
        unregister: flags.unregister,
        dryRun: flags['dry-run'] ?? 'none',
        kubeconfig: flags.kubeconfig,
        context: flags.context,
      },
      this.context(flags),
    );
    if (flags.output) await this.printObjects(result.objects, flags.output);
    else await this.write(changeLines(result.changes, result.dryRun));
  }
}
