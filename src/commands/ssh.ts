import { Flags } from '@oclif/core';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import {
  identityFileFlag,
  operatorOptions,
  REMOTE_EXIT_CODES,
  sshFlags,
  targetAndCommand,
  targetArg,
  targetFlags,
} from '../lib/operator/flags.ts';

export default class Ssh extends KrunCommand {
  static override summary = 'Open a shell or run a command over SSH';
  static override description = `Connects to the SSH debug server of \`krun run\` over an HBONE tunnel through the \
service's own URL, with an in-process SSH client: your key from the agent, ~/.ssh or -i, the host key pinned on first \
use in ~/.config/krun/known_hosts. Without a command: an interactive shell (a terminal when stdin is one). Cloud Run \
routes every tunnel to any instance; stderr says which one was reached.

${REMOTE_EXIT_CODES}`;
  static override examples = [
    '# A shell in Cloud Run service my-service\n<%= config.bin %> <%= command.id %> my-service --region us-central1',
    '# Pick the service from a list (on a terminal)\n<%= config.bin %> <%= command.id %>',
    '# One command\n<%= config.bin %> <%= command.id %> my-service -- df -h',
  ];
  static override strict = false;
  static override args = {
    target: targetArg,
  };
  static override flags = {
    ...targetFlags,
    ...sshFlags,
    'identity-file': identityFileFlag(true),
    tty: Flags.boolean({
      char: 't',
      summary: 'Force a terminal for a command (--no-tty: never)',
      allowNo: true,
      env: 'KRUN_TTY',
    }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Ssh);
    const { target, command } = targetAndCommand(this.argv, argv as string[]);
    const { runSsh } = await import('../lib/operator/exec.ts');
    const status = await runSsh(target, command, { ...operatorOptions(flags), tty: flags.tty }, this.context(flags));
    if (status !== 0) this.exitWith(status);
  }
}
