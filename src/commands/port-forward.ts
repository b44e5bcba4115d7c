import { Args, Flags } from '@oclif/core';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { operatorOptions, targetFlags } from '../lib/operator/flags.ts';

export default class PortForward extends KrunCommand {
  static override summary = 'Forward local ports to a workload';
  static override description = `Like kubectl port-forward, through the service's own URL: every local connection is \
its own HBONE tunnel, all of them streams of one HTTP/2 connection. REMOTE is a port inside the workload (the app \
port, a PORT_<name> port, 22) or a PORT_<name> name. When the tunnel drops (an instance restarts), new connections \
wait for it to come back. Runs until interrupted (exit 130).`;
  static override examples = [
    '# Local 8080 to the app port 8080, and any free port to PORT_admin\n<%= config.bin %> <%= command.id %> my-service 8080 :admin',
    '# Listen on every interface\n<%= config.bin %> <%= command.id %> my-service 9000:8080 --address 0.0.0.0',
  ];
  static override strict = false;
  static override args = {
    target: Args.string({ description: 'Cloud Run service name, https:// URL, or host:port', required: true }),
    ports: Args.string({ description: '[LOCAL:]REMOTE, one or more', required: true }),
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
    const { args, flags, argv } = await this.parse(PortForward);
    const { runPortForward } = await import('../lib/operator/port-forward.ts');
    await runPortForward(
      args.target,
      {
        ...operatorOptions(flags),
        ports: (argv as string[]).slice(1),
        addresses: flags.address ?? ['127.0.0.1'],
        onForwarding: (line) => process.stdout.write(`${line}\n`),
      },
      this.context(flags),
    );
  }
}
