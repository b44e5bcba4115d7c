// PTY helpers found in the image, best first. python3's pty module gives a real PTY with window-size changes and
// signal forwarding; util-linux `script` gives a PTY with the initial size only. Neither: PTY requests are refused
// and sessions run without a terminal (which still works for commands and sftp).
import { spawn } from 'node:child_process';
import type { PseudoTtyInfo, ServerChannel } from 'ssh2';
import { type Argv, executable } from './command.ts';
import type { PtyLauncher, PtyProcess } from './pty.ts';

// argv: cols rows program args…; fd 3 carries "cols rows\n" resize lines. Signals sent to the helper reach the
// program; the helper exits with the program's status, or dies of the same signal.
const PYTHON_PTY = `
import fcntl, os, pty, select, signal, struct, sys, termios
cols, rows, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
def size(fd, c, r):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
pid, master = pty.fork()
if pid == 0:
    try:
        size(0, cols, rows)
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.stderr.write('krun: %s: %s\\r\\n' % (argv[0], e.strerror))
        os._exit(127)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, lambda n, f: os.kill(pid, n))
inputs, ctl = [0, master, 3], b''
while master in inputs:
    try:
        ready = select.select(inputs, [], [])[0]
    except InterruptedError:
        continue
    for fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if fd == master:
            if not data:
                inputs.remove(master)
                break
            os.write(1, data)
        elif not data:
            inputs.remove(fd)
        elif fd == 0:
            os.write(master, data)
        else:
            ctl += data
            while b'\\n' in ctl:
                line, ctl = ctl.split(b'\\n', 1)
                c, r = line.split()
                size(master, int(c), int(r))
_, status = os.waitpid(pid, 0)
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
`;

function wire(channel: ServerChannel, child: ReturnType<typeof spawn>): void {
  child.stdin?.on('error', () => {});
  channel.pipe(child.stdin as NodeJS.WritableStream);
  child.stdout?.pipe(channel, { end: false });
  child.stderr?.pipe(channel.stderr, { end: false });
}

export function pythonPty(python: string): PtyLauncher {
  return {
    name: `python3 pty (${python})`,
    start(channel, argv, env, cwd, info: PseudoTtyInfo): PtyProcess {
      const child = spawn(
        python,
        ['-c', PYTHON_PTY, String(info.cols || 80), String(info.rows || 24), argv.file, ...argv.args],
        { env, cwd, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] },
      );
      wire(channel, child);
      const control = child.stdio[3] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
      control.on('error', () => {});
      return { child, resize: (cols, rows) => control.write(`${cols} ${rows}\n`) };
    },
  };
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function scriptPty(script: string, shell: string): PtyLauncher {
  return {
    name: `script (${script}; no window-size changes)`,
    start(channel, argv: Argv, env, cwd, info: PseudoTtyInfo): PtyProcess {
      const inner = `stty rows ${info.rows || 24} cols ${info.cols || 80} 2>/dev/null; exec ${[argv.file, ...argv.args].map(quote).join(' ')}`;
      const child = spawn(script, ['-qfec', inner, '/dev/null'], {
        env: { ...env, SHELL: shell },
        cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      wire(channel, child);
      return { child, resize: () => {} };
    },
  };
}

export function findPtyLauncher(exists: (path: string) => boolean = executable): PtyLauncher | undefined {
  const python = ['/usr/bin/python3', '/usr/local/bin/python3', '/bin/python3'].find(exists);
  if (python) return pythonPty(python);
  const script = ['/usr/bin/script', '/bin/script'].find(exists);
  const shell = ['/bin/sh', '/usr/bin/sh'].find(exists);
  return script && shell ? scriptPty(script, shell) : undefined;
}
