import { basename } from 'node:path';
import { Args } from '@oclif/core';
import { type CompletionCommand, completionScript, SHELLS, type Shell } from '../lib/cli/completion.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { UsageError } from '../lib/errors.ts';

export default class Autocomplete extends KrunCommand {
  static override summary = 'Print the shell completion script for bash or zsh';
  static override description =
    'Prints a script that completes commands, flags and flag values; it holds them all, so TAB never starts krun. ' +
    'Without SHELL, the shell named by $SHELL. Print it again after upgrading krun.';
  static override examples = [
    '# Complete krun in this bash session\nsource <(<%= config.bin %> <%= command.id %> bash)',
    '# For every bash session\n<%= config.bin %> <%= command.id %> bash > ~/.local/share/bash-completion/completions/krun',
    '# zsh: a file named _krun in a directory of $fpath, before compinit runs\n<%= config.bin %> <%= command.id %> zsh > ~/.zfunc/_krun',
  ];
  static override args = {
    shell: Args.string({ options: [...SHELLS], description: 'bash or zsh (default: from $SHELL)' }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Autocomplete);
    const shell = args.shell ?? basename(process.env.SHELL ?? '');
    if (!SHELLS.includes(shell as Shell)) {
      throw new UsageError(`can't tell which shell to complete for ($SHELL is "${process.env.SHELL ?? ''}")`, {
        hints: SHELLS.map((s) => `${this.config.bin} ${this.id} ${s}`),
      });
    }
    const commands: CompletionCommand[] = this.config.commands.map((c) => ({
      id: c.id,
      summary: c.summary,
      hidden: c.hidden,
      flags: Object.entries(c.flags).map(([name, f]) => ({
        name,
        char: f.char,
        summary: f.summary ?? f.description,
        options: f.type === 'option' ? f.options : undefined,
        hidden: f.hidden,
      })),
    }));
    const topics = new Map(this.config.topics.map((t) => [t.name, t.description ?? '']));
    await this.write(completionScript(shell as Shell, this.config.bin, commands, topics));
  }
}
