// Progress for multi-step commands: a listr2 task list on stderr (stdout carries only the result). On a terminal it
// is listr2's live list; otherwise (pipes, CI, tests) one plain line per start and end of each step. listr2 is loaded
// only when a command runs steps.
import type { KrunContext } from '../context.ts';

export interface Task {
  /** Present progressive: "Applying namespace/fortio". */
  readonly title: string;
  /** Does the step; resolves to the line it ends with ("namespace/fortio created"). */
  run(signal: AbortSignal): Promise<string>;
}

/** Runs `tasks` in order, stopping at the first failure, whose error (as thrown) is rethrown. */
export async function runTasks(tasks: readonly Task[], ctx: KrunContext): Promise<void> {
  if (tasks.length === 0) return;
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2');
  const err = ctx.streams.err as NodeJS.WriteStream;
  const logger = new ListrLogger({ processOutput: new ProcessOutput(err, err), useIcons: false });
  // The live renderer only when both streams are terminals: with stdout piped (`-o yaml > x`) the plain log is safer.
  const live = ctx.streams.err.isTTY === true && ctx.streams.out.isTTY === true;
  const list = new Listr(
    tasks.map((t) => ({
      title: t.title,
      task: async (_: unknown, task: { title: string }) => {
        task.title = await t.run(ctx.signal);
      },
    })),
    {
      renderer: live ? 'default' : 'simple',
      fallbackRenderer: 'simple',
      rendererOptions: live ? { logger: new ListrLogger({ processOutput: new ProcessOutput(err, err) }) } : { logger },
      fallbackRendererOptions: { logger },
      exitOnError: true,
      registerSignalListeners: false,
      concurrent: false,
    },
  );
  await list.run();
}
