import { Args, Flags } from '@oclif/core';
import { outputFlag } from '../lib/cli/flags.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { KrunError } from '../lib/errors.ts';
import { configMapFlag, contextFlag, kubeconfigFlag, projectFlag, secretFlag } from '../lib/setup/flags.ts';

export default class Doctor extends KrunCommand {
  static override summary = 'Check what krun run needs, and say how to fix it';
  static override description =
    "Checks, one line each: Google credentials, the namespace's Google service account and its project role, the cluster's reachability, the namespace and its ServiceAccount, the identity's RBAC (by SubjectAccessReview), istio-system/mesh-env and its keys, the gate's address, and the Istio CRDs; with SERVICE, that its registration (krun register) exists and points at its current URL, and that it uses HTTP/2 end to end on port 15009. Read-only. Exits 1 when any check fails.";
  static override examples = [
    '# Check namespace fortio in project my-project\n<%= config.bin %> <%= command.id %> -n fortio --project my-project',
    '# A namespace set up with --config-map/--secret: check exactly those reads\n<%= config.bin %> <%= command.id %> -n fortio --project my-project --config-map app-config --secret app-key',
    '# Also check Cloud Run service fortio\n<%= config.bin %> <%= command.id %> fortio -n fortio --project my-project --region us-central1',
  ];
  static override args = {
    service: Args.string({ description: 'Also check this Cloud Run service: its registration and HTTP/2 port' }),
  };
  static override flags = {
    namespace: Flags.string({
      char: 'n',
      summary: "Workload namespace (default: the kubeconfig context's, else default)",
      env: 'KRUN_NAMESPACE',
    }),
    project: projectFlag,
    region: Flags.string({
      summary: "The Cloud Run service's region (default: CLOUDSDK_RUN_REGION)",
      env: 'KRUN_REGION',
    }),
    'service-account': Flags.string({
      summary: "The workload's Kubernetes ServiceAccount (default: default)",
      env: 'KRUN_SERVICE_ACCOUNT',
    }),
    'config-map': configMapFlag,
    secret: secretFlag,
    output: outputFlag(['json', 'yaml'] as const),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Doctor);
    const { doctor, formatChecks } = await import('../lib/setup/doctor.ts');
    const checks = await doctor(
      {
        namespace: flags.namespace,
        project: flags.project,
        serviceAccount: flags['service-account'],
        configMaps: flags['config-map'],
        secrets: flags.secret,
        service: args.service,
        region: flags.region,
        kubeconfig: flags.kubeconfig,
        context: flags.context,
      },
      this.context(flags),
    );
    // The checks print as one array, as the json output always has (not a v1 List: they are not objects).
    if (flags.output) await this.printObjects([checks], flags.output);
    else await this.write(formatChecks(checks));
    const failed = checks.filter((c) => !c.ok).length;
    if (failed > 0) throw new KrunError(`${failed} of ${checks.length} checks failed`);
  }
}
