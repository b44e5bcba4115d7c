// Drives krun's SSH debug server the way operators reach it: a running `krun run` (standalone), and the stock
// OpenSSH client (ssh, scp, sftp) with `krun hbone` as its ProxyCommand. Keys come from ssh-keygen.
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, type Spawned, spawnKrun } from '../support/cli.ts';
import { freePort } from '../support/control-plane/ports.ts';

export interface Run {
  readonly status: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Runs a program to completion (no shell), stdout kept as bytes. */
export function run(
  file: string,
  args: readonly string[],
  options: { input?: string | Buffer; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: options.env ?? { PATH: process.env.PATH },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) =>
      resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.end(options.input);
  });
}

/** A fresh Ed25519 key pair: the private key's path and the public line. */
export async function keygen(dir: string, name: string): Promise<{ path: string; pub: string }> {
  const path = join(dir, name);
  const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  if (r.status !== 0) throw new Error(r.stderr);
  return { path, pub: (await readFile(`${path}.pub`, 'utf8')).trim() };
}

export interface KrunSsh {
  readonly krun: Spawned;
  readonly hbonePort: number;
  readonly sshPort: number;
  /** OpenSSH options that reach this instance through `krun hbone`. */
  readonly options: (knownHosts: string) => string[];
  stop(): Promise<void>;
}

/** Starts `krun run` (standalone) with the SSH server on a free port, named `ssh` for the tunnel. */
export async function startKrunSsh(
  dir: string,
  env: Record<string, string | undefined>,
  command: readonly string[] = [],
): Promise<KrunSsh> {
  await mkdir(dir, { recursive: true });
  const [hbonePort, sshPort] = await Promise.all([freePort(), freePort()]);
  const krun = spawnKrun(['run', ...(command.length > 0 ? ['--', ...command] : [])], {
    cleanEnv: {
      PATH: process.env.PATH,
      HOME: dir,
      MESH_BASE_DIR: dir,
      PORT_http: '-',
      KRUN_HBONE_PORT: `127.0.0.1:${hbonePort}`,
      KRUN_SSH_PORT: String(sshPort),
      PORT_ssh: String(sshPort),
      ...env,
    },
    cwd: dir,
  });
  await krun.waitForLog('HBONE listening').catch((err: Error) => {
    krun.child.kill('SIGKILL');
    throw new Error(`${err.message}\n--- krun's log:\n${krun.stderr()}`);
  });
  const proxy = `${process.execPath} ${BIN} hbone http://127.0.0.1:${hbonePort}/_hbone/ssh`;
  return {
    krun,
    hbonePort,
    sshPort,
    options: (knownHosts) => [
      '-o',
      `ProxyCommand=${proxy}`,
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=accept-new',
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      '-F',
      '/dev/null',
    ],
    stop: async () => {
      krun.child.kill('SIGTERM');
      await krun.exited;
    },
  };
}

/** The JSON log lines of krun so far with this message. */
export function logLines(krun: Spawned, message: string): Record<string, unknown>[] {
  return krun
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.message === message);
}
