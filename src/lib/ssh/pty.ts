// Pseudo-terminals without a native module: a PtyLauncher runs the program on a PTY through a helper available in
// the image and relays the channel to it.
import type { ChildProcess } from 'node:child_process';
import type { PseudoTtyInfo, ServerChannel } from 'ssh2';
import type { Argv } from './command.ts';

export interface PtyProcess {
  readonly child: ChildProcess;
  resize(cols: number, rows: number): void;
}

export interface PtyLauncher {
  /** What provides the PTY, for the log. */
  readonly name: string;
  start(channel: ServerChannel, argv: Argv, env: Record<string, string>, cwd: string, info: PseudoTtyInfo): PtyProcess;
}
