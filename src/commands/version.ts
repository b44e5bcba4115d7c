import { outputFlag } from '../lib/cli/flags.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { describeVersion, versionInfo } from '../lib/version.ts';

export default class Version extends KrunCommand {
  static override summary = 'Print the krun, Node.js and platform versions';
  static override examples = [
    '# One line for people\n<%= config.bin %> <%= command.id %>',
    '# Machine-readable\n<%= config.bin %> <%= command.id %> -o json',
  ];
  static override flags = { output: outputFlag(['json', 'yaml'] as const) };

  async run(): Promise<void> {
    const { flags } = await this.parse(Version);
    const info = versionInfo(this.config.version, process);
    if (flags.output) await this.printObjects([info], flags.output);
    else await this.write(describeVersion(info));
  }
}
