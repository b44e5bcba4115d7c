import { Flags } from '@oclif/core';
import { outputFlag } from '../lib/cli/flags.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { UsageError } from '../lib/errors.ts';
import { AUTH_PLUGIN, gkeCredentials } from '../lib/gcp/get-credentials.ts';
import { kubeconfigPaths } from '../lib/kube/kubeconfig.ts';
import { kubeconfigOf, mergeIntoFile } from '../lib/kube/kubeconfig-file.ts';

export default class Kubeconfig extends KrunCommand {
  static override summary = 'Write a kubeconfig for the mesh GKE cluster';
  static override description =
    'Selects the cluster as `krun run` does on Google Cloud (mesh-labelled clusters first, the own region first, falling back when an API server is unreachable), or takes the one named. Prints the kubeconfig, or merges it into $KUBECONFIG (or ~/.kube/config) like `gcloud container clusters get-credentials`.';
  static override examples = [
    '# Print a kubeconfig for the mesh cluster of the current project\n<%= config.bin %> <%= command.id %> --project my-project',
    '# Merge a named cluster into ~/.kube/config and make it the current context\n<%= config.bin %> <%= command.id %> --project my-project --cluster istio --location us-central1 --merge',
  ];
  static override flags = {
    project: Flags.string({ summary: 'Google Cloud project of the cluster', env: 'PROJECT_ID' }),
    cluster: Flags.string({ summary: 'Cluster name (default: selected automatically)', env: 'CLUSTER_NAME' }),
    location: Flags.string({ summary: 'Cluster region or zone', env: 'CLUSTER_LOCATION', dependsOn: ['cluster'] }),
    merge: Flags.boolean({
      summary: 'Merge into $KUBECONFIG (or ~/.kube/config) instead of printing',
      env: 'KRUN_MERGE',
    }),
    output: { ...outputFlag(['yaml', 'json'] as const), exclusive: ['merge'] },
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Kubeconfig);
    const ctx = this.context(flags);
    const { entry, staticToken } = await gkeCredentials(
      { projectId: flags.project, clusterName: flags.cluster, clusterLocation: flags.location },
      ctx,
    );
    if (staticToken) {
      ctx.log.warn(
        `${AUTH_PLUGIN} is not on PATH: the kubeconfig holds a static access token that expires within the hour`,
      );
    }
    if (flags.merge) {
      const path = kubeconfigPaths(ctx.env.KUBECONFIG, ctx.env.HOME)[0];
      if (!path) throw new UsageError('--merge needs KUBECONFIG or HOME to find the kubeconfig file');
      await mergeIntoFile(path, entry);
      await this.write(`context ${entry.name} written to ${path}\n`);
      return;
    }
    await this.printObjects([kubeconfigOf(entry)], flags.output ?? 'yaml');
  }
}
