import { Flags } from '@oclif/core';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { UsageError } from '../lib/errors.ts';
import {
  identityFileFlag,
  operatorOptions,
  REMOTE_EXIT_CODES,
  sshFlags,
  targetAndCommand,
  targetArg,
  targetFlags,
} from '../lib/operator/flags.ts';

export default class Exec extends KrunCommand {
  static override summary = 'Run a command in a workload, like kubectl exec';
  static override description =
    `Runs COMMAND through the SSH debug server of \`krun run\`, reached over an HBONE tunnel \
through the service's own URL (in-process SSH client; no OpenSSH needed). stdout and stderr stay apart, and krun \
exits with the command's status. TARGET is a Cloud Run service name (resolved with the Admin API: needs \
roles/run.viewer), an https:// URL, or host:port of a workload serving HBONE over TLS; tunnels need roles/run.invoker.

${REMOTE_EXIT_CODES}`;
  static override examples = [
    '# Run a command in Cloud Run service my-service\n<%= config.bin %> <%= command.id %> my-service --region us-central1 -- ps aux',
    '# Pick the service from a list (on a terminal)\n<%= config.bin %> <%= command.id %> -- ps aux',
    '# Pipe a file into a command\n<%= config.bin %> <%= command.id %> -i my-service -- sh -c "cat > /tmp/dump.sql" < dump.sql',
  ];
  static override strict = false;
  static override args = {
    target: targetArg,
  };
  static override flags = {
    ...targetFlags,
    ...sshFlags,
    'identity-file': identityFileFlag(false),
    stdin: Flags.boolean({ char: 'i', summary: 'Pass stdin to the command', env: 'KRUN_STDIN' }),
    tty: Flags.boolean({ char: 't', summary: 'Allocate a terminal (needs one on stdin)', env: 'KRUN_TTY' }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Exec);
    const { target, command } = targetAndCommand(this.argv, argv as string[]);
    if (command.length === 0) {
      throw new UsageError('no command to run', { hints: [`krun exec ${target ?? 'TARGET'} -- COMMAND [ARGS…]`] });
    }
    const { runExec } = await import('../lib/operator/exec.ts');
    const status = await runExec(
      target,
      command,
      { ...operatorOptions(flags), stdin: flags.stdin, tty: flags.tty },
      this.context(flags),
    );
    if (status !== 0) this.exitWith(status);
  }
}
