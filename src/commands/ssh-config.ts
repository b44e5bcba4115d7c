import { Args } from '@oclif/core';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { UsageError } from '../lib/errors.ts';
import { operatorOptions, sshFlags, targetFlags } from '../lib/operator/flags.ts';

export default class SshConfig extends KrunCommand {
  static override summary = 'Print ~/.ssh/config entries for workloads';
  static override description = `Prints one OpenSSH Host entry per TARGET (krun.<service>), with \`krun hbone\` as its \
ProxyCommand and krun's pinned host keys, like gcloud compute config-ssh: append them to ~/.ssh/config and ssh, scp, \
rsync -e ssh and editors' remote modes reach the workload directly.`;
  static override examples = [
    '# Add entries for two services\n<%= config.bin %> <%= command.id %> my-service other-service --region us-central1 >> ~/.ssh/config\nssh krun.my-service',
  ];
  static override strict = false;
  static override args = {
    target: Args.string({ description: 'Cloud Run service names, https:// URLs, or host:port', required: true }),
  };
  static override flags = { ...targetFlags, ...sshFlags };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(SshConfig);
    const targets = argv as string[];
    if (targets.length === 0) throw new UsageError('no TARGET given');
    const { sshConfig } = await import('../lib/operator/ssh-config.ts');
    await this.write(await sshConfig(targets, operatorOptions(flags), this.context(flags)));
  }
}
