import { Args } from '@oclif/core';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { identityFileFlag, operatorOptions, sshFlags, targetFlags } from '../lib/operator/flags.ts';

export default class Cp extends KrunCommand {
  static override summary = 'Copy files to or from a workload over SFTP';
  static override description = `Copies a file or a directory tree (recursively, modes preserved) between this machine \
and a workload, like kubectl cp but over SFTP through the SSH debug server (no tar or shell needed in the image). \
One of SRC and DST is TARGET:/path, TARGET being a Cloud Run service name, https://URL or host:port. A DST that is an \
existing directory receives SRC under its own name.

EXIT CODES
  0    copied
  1    a file could not be read or written, or the target could not be resolved
  2    bad arguments or flags
  255  the tunnel or SSH connection failed`;
  static override examples = [
    '# Upload a file\n<%= config.bin %> <%= command.id %> ./dump.sql my-service:/tmp/dump.sql',
    '# Download a directory\n<%= config.bin %> <%= command.id %> my-service:/var/log/app ./logs',
  ];
  static override args = {
    src: Args.string({ description: 'Local path or TARGET:/path', required: true }),
    dst: Args.string({ description: 'Local path or TARGET:/path', required: true }),
  };
  static override flags = { ...targetFlags, ...sshFlags, 'identity-file': identityFileFlag(true) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Cp);
    const { runCopy } = await import('../lib/operator/cp.ts');
    await runCopy(args.src, args.dst, operatorOptions(flags), this.context(flags));
  }
}
