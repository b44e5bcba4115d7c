// The base of every krun command: parses the global flags, builds the KrunContext once (streams, env, signal,
// logger, interactive), and prints results to stdout. Commands stay thin: flags -> one service call -> print.
import { Command, type Interfaces } from '@oclif/core';
import { createContext, type KrunContext, signalController } from '../context.ts';
import { ExitStatusError } from '../errors.ts';
import { formatObjects, type OutputFormat } from '../output/printer.ts';
import { globalFlags } from './flags.ts';

type GlobalFlags = Interfaces.InferredFlags<typeof globalFlags>;

export abstract class KrunCommand extends Command {
  static override baseFlags = globalFlags;

  private ctx?: KrunContext;
  private disposeSignals?: () => void;

  /** The context for services, built on first use from the parsed global flags. */
  protected context(flags: GlobalFlags): KrunContext {
    if (this.ctx) return this.ctx;
    const { controller, dispose } = signalController();
    this.disposeSignals = dispose;
    this.ctx = createContext({
      streams: { in: process.stdin, out: process.stdout, err: process.stderr },
      env: process.env,
      cwd: process.cwd(),
      signal: controller.signal,
      logLevel: flags.verbose ? 'debug' : 'info',
      ...(flags['log-format'] ? { logFormat: flags['log-format'] } : {}),
    });
    return this.ctx;
  }

  /** Writes objects to stdout in kubectl's -o format. */
  protected async printObjects(objects: readonly unknown[], format: OutputFormat): Promise<void> {
    await this.write(await formatObjects(objects, format));
  }

  /** Writes result text to stdout, resolving once it is flushed (stdout may be a pipe). */
  protected write(text: string): Promise<void> {
    return new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
  }

  /** Ends the command with `status` and no message (a supervised app's or remote command's own status). */
  protected exitWith(status: number): never {
    throw new ExitStatusError(status);
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    this.disposeSignals?.();
    await super.finally(err);
  }
}
