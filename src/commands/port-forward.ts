import { Args, Flags } from '@oclif/core';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { operatorOptions, targetArg, targetFlags } from '../lib/operator/flags.ts';

export default class PortForward extends KrunCommand {
  static override summary = 'Forward local ports to a workload';
  static override description = `Like kubectl port-forward, through the service's own URL: every local connection is \
its own HBONE tunnel, all of them streams of one HTTP/2 connection. REMOTE is a port inside the workload (the app \
port, a PORT_<name> port, 22) or a PORT_<name> name. When the tunnel drops (an instance restarts), new connections \
wait for it to come back. Runs until interrupted (exit 130).`;
  static override examples = [
    '# Local 8080 to the app port 8080, and any free port to PORT_admin\n<%= config.bin %> <%= command.id %> my-service 8080 :admin',
    '# Pick the service from a list (on a terminal)\n<%= config.bin %> <%= command.id %> 8080',
    '# Listen on every interface\n<%= config.bin %> <%= command.id %> my-service 9000:8080 --address 0.0.0.0',
  ];
  static override strict = false;
  static override args = {
    target: targetArg,
    ports: Args.string({ description: '[LOCAL:]REMOTE, one or more' }),
  };
  static override flags = {
    ...targetFlags,
    address: Flags.string({
      summary: 'Local addresses to listen on, comma-separated (default: 127.0.0.1)',
      multiple: true,
      delimiter: ',',
      env: 'KRUN_ADDRESS',
    }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(PortForward);
    const { runPortForward, targetAndPorts } = await import('../lib/operator/port-forward.ts');
    const { target, ports } = targetAndPorts(argv as string[]);
    await runPortForward(
      target,
      {
        ...operatorOptions(flags),
        ports,
        addresses: flags.address ?? ['127.0.0.1'],
        onForwarding: (line) => process.stdout.write(`${line}\n`),
      },
      this.context(flags),
    );
  }
}
