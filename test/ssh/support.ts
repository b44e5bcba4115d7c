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

/** Signs `${key}.pub` with the CA key as an OpenSSH user certificate; returns the certificate's path. */
export async function signUserCertificate(
  ca: string,
  key: string,
  id: string,
  principals: string,
  validity: string,
): Promise<string> {
  const r = await run('ssh-keygen', ['-q', '-s', ca, '-I', id, '-n', principals, '-V', validity, `${key}.pub`]);
  if (r.status !== 0) throw new Error(r.stderr);
  return `${key}-cert.pub`;
}

export interface KrunSsh {
  readonly krun: Spawned;
  readonly hbonePort: number;
  readonly sshPort: number;
  /** OpenSSH options that reach this instance through `krun hbone`. */
  readonly options: (knownHosts: string) => string[];
  stop(): Promise<void>;
}

/**
 * Starts `krun run` (standalone) with the SSH server on a free port, named `ssh` for the tunnel. `executable` runs
 * krun instead of the development build (the server and the ProxyCommand's `krun hbone`).
 */
export async function startKrunSsh(
  dir: string,
  env: Record<string, string | undefined>,
  command: readonly string[] = [],
  executable: readonly string[] = [process.execPath, BIN],
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
    executable,
  });
  await krun.waitForLog('HBONE listening').catch((err: Error) => {
    krun.child.kill('SIGKILL');
    throw new Error(`${err.message}\n--- krun's log:\n${krun.stderr()}`);
  });
  const proxy = `${executable.join(' ')} hbone http://127.0.0.1:${hbonePort}/_hbone/ssh`;
  return {
    krun,
    hbonePort,
    sshPort,
    options: (knownHosts) => opensshOptions(proxy, knownHosts),
    stop: async () => {
      krun.child.kill('SIGTERM');
      await krun.exited;
    },
  };
}

/** OpenSSH options for a ProxyCommand, a known_hosts file of its own, and no prompts or other identities. */
export function opensshOptions(proxyCommand: string, knownHosts: string): string[] {
  return [
    '-o',
    `ProxyCommand=${proxyCommand}`,
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
  ];
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

// A terminal for the stock ssh client, so `ssh -tt` behaves as at a keyboard: ssh runs on a PTY (python3's pty
// module, like script(1)) whose size the test sets; a size change makes the kernel send ssh SIGWINCH, and ssh sends
// the window-change request itself. Lines on the driver's stdin: `size COLS ROWS`, or `send HEX` (bytes typed).
const PTY_DRIVER = `
import binascii, fcntl, os, pty, select, struct, sys, termios
cols, rows, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
def size(fd, c, r):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
pid, master = pty.fork()
if pid == 0:
    size(0, cols, rows)
    os.execvp(argv[0], argv)
ctl, open_fds = b'', [0, master]
while master in open_fds:
    for fd in select.select(open_fds, [], [])[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if fd == master:
            if not data:
                open_fds.remove(master)
                break
            os.write(1, data)
        elif not data:
            open_fds.remove(0)
        else:
            ctl += data
            while b'\\n' in ctl:
                line, ctl = ctl.split(b'\\n', 1)
                verb, _, arg = line.decode().partition(' ')
                if verb == 'size':
                    c, r = arg.split()
                    size(master, int(c), int(r))
                elif verb == 'send':
                    os.write(master, binascii.unhexlify(arg))
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) & 255)
`;

export interface Terminal {
  /** Everything ssh wrote to the terminal so far, with the terminal's CRLF line ends made LF. */
  output(): string;
  /** Resolves once the output matches `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  resize(cols: number, rows: number): void;
  type(bytes: string): void;
  readonly exited: Promise<number | null>;
}

/** Runs `argv` (ssh, krun) on a terminal of `cols`×`rows` with TERM=`term`, and `env` added to PATH. */
export function terminal(
  argv: readonly string[],
  cols: number,
  rows: number,
  term: string,
  env: Readonly<Record<string, string | undefined>> = {},
): Terminal {
  const child = spawn('/usr/bin/python3', ['-c', PTY_DRIVER, String(cols), String(rows), ...argv], {
    env: { PATH: process.env.PATH, ...env, TERM: term },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8').replace(/\r\n/g, '\n');
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    output: () => out,
    waitFor: (pattern, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (!m) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`terminal output never matched ${pattern}:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    resize: (cols, rows) => child.stdin.write(`size ${cols} ${rows}\n`),
    type: (bytes) => child.stdin.write(`send ${Buffer.from(bytes, 'latin1').toString('hex')}\n`),
    exited,
  };
}
