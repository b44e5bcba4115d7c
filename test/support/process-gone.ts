// Waits until a process is gone: exited and reaped, or a zombie its new parent has not reaped yet (killed either way,
// not left running). For children orphaned by a krun that exited.
import { readFile } from 'node:fs/promises';
import { waitFor } from './control-plane/wait.ts';

export async function waitUntilGone(pid: number, what: string): Promise<void> {
  await waitFor(
    `${what} (pid ${pid}) to be killed`,
    async () => {
      const state = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => 'gone');
      return state === 'gone' || / Z /.test(state) ? true : undefined;
    },
    { timeoutMs: 10_000 },
  );
}
