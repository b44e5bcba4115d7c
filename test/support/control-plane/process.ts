// Child processes of the test harness: each one dies with the harness. `setpriv --pdeathsig KILL` makes the kernel
// kill the child if the test runner itself is killed (once setpriv has armed it, a moment after the spawn), so no etcd
// or apiserver outlives a crashed run; stop()
// covers the normal path (SIGTERM, then SIGKILL after a grace period). Output goes to a log file named after the
// process, which failures point at.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { join } from 'node:path';

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Settles when the process exits, with its exit code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  readonly args: readonly string[];
  readonly logDir: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** Every process started here, so a last-resort exit hook can kill what a failing test left running. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function startProcess(name: string, command: string, options: SpawnOptions): ManagedProcess {
  const logFile = join(options.logDir, `${name}.log`);
  const log = openSync(logFile, 'a');
  const [file, args] = SETPRIV
    ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...options.args]]
    : [command, [...options.args]];
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: { ...(options.env ?? process.env) },
    stdio: ['ignore', log, log],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  live.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    name,
    pid: child.pid,
    logFile,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Whether a process with this pid exists (signal 0 probes without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
