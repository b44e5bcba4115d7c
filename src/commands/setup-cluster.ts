import { Flags } from '@oclif/core';
import { outputFlag } from '../lib/cli/flags.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { changeLines } from '../lib/setup/apply.ts';
import { contextFlag, dryRunFlag, kubeconfigFlag, projectFlag } from '../lib/setup/flags.ts';

export default class SetupCluster extends KrunCommand {
  static override summary = 'Install the gate and mesh-env in istio-system';
  static override description =
    'Applies, in istio-system: the gate (a Deployment running `krun gate`, its ServiceAccount and RBAC, and an external and an internal load-balanced Service), read access to mesh-env for every authenticated identity, and the mesh-env ConfigMap with PROJECT_ID, PROJECT_NUMBER, CLUSTER_NAME, CLUSTER_LOCATION, CAROOT_ISTIOD and, once the load balancers have them, MCON_ADDR and IMCON_ADDR. Idempotent: a second run changes nothing and says so. --uninstall deletes those objects again, only where labelled app.kubernetes.io/managed-by=krun; mesh-env loses the keys krun writes and is deleted only if nothing else is left in it, and the reader Role stays while RoleBindings of setup-namespace use it.';
  static override examples = [
    '# Install the cluster side for project my-project\n<%= config.bin %> <%= command.id %> --project my-project --cluster-name mesh --cluster-location us-central1 --image us-docker.pkg.dev/my-project/krun/krun:0.1.0',
    '# Print the objects, changing nothing\n<%= config.bin %> <%= command.id %> --project my-project --dry-run=client -o yaml',
    '# See what --uninstall would delete, then delete it\n<%= config.bin %> <%= command.id %> --uninstall --dry-run=server\n<%= config.bin %> <%= command.id %> --uninstall',
  ];
  static override flags = {
    project: projectFlag,
    'project-number': Flags.string({
      summary: "The project's number (default: asked of Resource Manager)",
      env: 'KRUN_PROJECT_NUMBER',
    }),
    'cluster-name': Flags.string({ summary: "The GKE cluster's name, for mesh-env", env: 'KRUN_CLUSTER_NAME' }),
    'cluster-location': Flags.string({
      summary: "The GKE cluster's location, for mesh-env",
      env: 'KRUN_CLUSTER_LOCATION',
    }),
    image: Flags.string({ summary: 'The image with krun the gate runs (default: krun:latest)', env: 'KRUN_IMAGE' }),
    'gate-arg': Flags.string({
      summary: 'Extra flags for krun gate in the Deployment',
      env: 'KRUN_GATE_ARG',
      multiple: true,
      delimiter: ',',
    }),
    'gate-port': Flags.integer({
      summary: "The gate's SNI port (default: 15442)",
      env: 'KRUN_GATE_PORT',
      min: 1,
      max: 65535,
    }),
    uninstall: Flags.boolean({
      summary: 'Delete the objects an earlier setup-cluster created',
      env: 'KRUN_UNINSTALL',
      exclusive: ['project-number', 'cluster-name', 'cluster-location', 'image', 'gate-arg', 'gate-port'],
    }),
    'dry-run': dryRunFlag,
    output: outputFlag(['json', 'yaml', 'name'] as const),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SetupCluster);
    if (flags.uninstall) {
      const { uninstallCluster } = await import('../lib/setup/cluster-uninstall.ts');
      const dryRun = flags['dry-run'] ?? 'none';
      const removed = await uninstallCluster(
        { dryRun, kubeconfig: flags.kubeconfig, context: flags.context },
        this.context(flags),
      );
      if (flags.output) await this.printObjects(removed.objects, flags.output);
      else await this.write(changeLines(removed.changes, dryRun));
      return;
    }
    const { setupCluster } = await import('../lib/setup/cluster.ts');
    const result = await setupCluster(
      {
        project: flags.project,
        projectNumber: flags['project-number'],
        clusterName: flags['cluster-name'],
        clusterLocation: flags['cluster-location'],
        image: flags.image,
        gateArgs: flags['gate-arg'],
        gatePort: flags['gate-port'],
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
