// Runs the built CLI (bin/run.js) as users do: a real process, real exit status, stdout and stderr kept apart.
// `krun()` runs to completion; `spawnKrun()` returns the running process for tests that signal it.
import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from './control-plane/wait.ts';

export const BIN = new URL('../../bin/run.js', import.meta.url).pathname;

export interface CliResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  /** stdout as bytes, for binary output (tunnels). */
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
}

export interface CliOptions {
  /** Added to the test runner's environment; undefined removes a variable. CI=true unless overridden. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Replaces the environment entirely (CI=true is still added). */
  readonly cleanEnv?: Readonly<Record<string, string | undefined>>;
  readonly input?: string | Buffer;
  readonly nodeArgs?: readonly string[];
  readonly cwd?: string;
  /** A wrapper command in front of node, e.g. ['unshare', '--pid', '--fork']. */
  readonly prefix?: readonly string[];
  /** Runs this instead of node with bin/run.js, e.g. the standalone executable (nodeArgs are then ignored). */
  readonly executable?: readonly string[];
}

export interface Spawned {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once stderr contains `text`. */
  waitForLog(text: string, timeoutMs?: number): Promise<void>;
  readonly exited: Promise<CliResult>;
}

export function spawnKrun(args: readonly string[], options: CliOptions = {}): Spawned {
  const krunCommand = options.executable ?? [process.execPath, ...(options.nodeArgs ?? []), BIN];
  const [file, ...rest] = [...(options.prefix ?? []), ...krunCommand, ...args];
  const env = { ...(options.cleanEnv ?? process.env), CI: 'true', ...options.env };
  const child = spawn(file ?? process.execPath, rest, { env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const stdout = () => Buffer.concat(out).toString('utf8');
  const stderr = () => Buffer.concat(err).toString('utf8');
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) =>
      resolve({ status, signal, stdout: stdout(), stdoutBytes: Buffer.concat(out), stderr: stderr() }),
    );
  });
  child.stdin.end(options.input);
  return {
    child,
    stdout,
    stderr,
    exited,
    waitForLog: (text, timeoutMs = 20_000) =>
      waitFor(`"${text}" in krun's log`, async () => (stderr().includes(text) ? true : undefined), { timeoutMs }).then(
        () => {},
      ),
  };
}

export function krun(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return spawnKrun(args, options).exited;
}
