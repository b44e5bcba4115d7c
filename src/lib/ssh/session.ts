// One `session` channel: env and pty requests first, then exactly one of shell, exec or the sftp subsystem. Every
// request is answered (accept or reject); the exit status, or the signal that killed the process, goes back to the
// client before the channel closes, and one audit line records who ran what and how it ended.
import { type ChildProcess, spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { Logger } from '../log/logger.ts';
import type { Identity } from './auth.ts';
import { type Argv, sessionArgv } from './command.ts';
import type { PtyLauncher } from './pty.ts';

export interface SessionOptions {
  readonly identity: Identity;
  readonly user: string;
  readonly from: string;
  /** The environment every command starts with (requests add to it). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly shell: string | undefined;
  readonly pty: PtyLauncher | undefined;
  readonly log: Logger;
  /** Serves the sftp subsystem on an accepted channel; resolves when it ends. */
  readonly sftp: (accept: () => unknown) => Promise<void>;
  /** Called once when the session ends, whatever the outcome. */
  readonly done: () => void;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ENV = 64;

interface Running {
  readonly child: ChildProcess;
  resize?(cols: number, rows: number): void;
}

export function handleSession(session: Session, o: SessionOptions): void {
  const env: Record<string, string> = { ...o.env };
  let added = 0;
  let pty: PseudoTtyInfo | undefined;
  let running: Running | undefined;
  let finished = false;
  const finish = (fields: Record<string, unknown>) => {
    if (finished) return;
    finished = true;
    o.log.info('ssh session ended', {
      who: o.identity.fingerprint,
      ...(o.identity.keyId === undefined ? {} : { keyId: o.identity.keyId }),
      user: o.user,
      from: o.from,
      ...fields,
    });
    o.done();
  };
  let serving = false;
  session.on('close', () => {
    if (running && running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGHUP');
    // A running command or sftp reports its own end; this covers sessions that never started one.
    if (!running && !serving) finish({ what: 'session', closed: 'by the client' });
  });
  session.on('env', (accept, reject, info) => {
    if (ENV_NAME.test(info.key) && added < MAX_ENV) {
      env[info.key] = info.val;
      added++;
      accept?.();
    } else reject?.();
  });
  session.on('pty', (accept, reject, info) => {
    if (!o.identity.permitPty || !o.pty) return reject?.();
    pty = info;
    accept?.();
  });
  session.on('window-change', (accept, reject, info) => {
    if (!pty || !running?.resize) return reject?.();
    running.resize(info.cols, info.rows);
    accept?.();
  });
  session.on('signal', (accept, reject, info) => {
    const name = `SIG${info.name}` as NodeJS.Signals;
    if (!running || !(name in osConstants.signals)) return reject?.();
    running.child.kill(name);
    accept?.();
  });
  session.on('x11', (_accept, reject) => reject?.());
  session.on('auth-agent', (_accept, reject) => reject?.());
  session.on('subsystem', (_accept, reject, info) => {
    o.log.info('ssh subsystem refused', { who: o.identity.fingerprint, name: info.name });
    reject?.();
  });
  session.on('sftp', (accept) => {
    serving = true;
    o.log.info('ssh session started', { who: o.identity.fingerprint, user: o.user, from: o.from, what: 'sftp' });
    o.sftp(accept).then(
      () => finish({ what: 'sftp' }),
      (err: Error) => finish({ what: 'sftp', error: err.message }),
    );
  });
  const run = (accept: () => ServerChannel | undefined, reject: (() => void) | undefined, command?: string) => {
    const what = command === undefined ? 'shell' : 'exec';
    const argv = sessionArgv(command, o.shell, pty !== undefined);
    if (!argv) {
      reject?.();
      finish({ what, refused: 'no shell in this image' });
      return;
    }
    const channel = accept();
    if (!channel) return;
    o.log.info('ssh session started', {
      who: o.identity.fingerprint,
      user: o.user,
      from: o.from,
      what,
      ...(command === undefined ? {} : { command }),
      pty: pty !== undefined,
    });
    try {
      running = start(channel, argv, env, o, pty);
    } catch (err) {
      channel.stderr.write(`krun: ${(err as Error).message}\r\n`);
      channel.exit(127);
      channel.end();
      finish({ what, command, exit: 127, error: (err as Error).message });
      return;
    }
    const child = running.child;
    let ended = false;
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (ended) return;
      ended = true;
      channel.stderr.write(`krun: can't run ${argv.file}: ${err.message}\n`);
      channel.exit(err.code === 'ENOENT' ? 127 : 126);
      channel.end();
      finish({ what, command, exit: err.code === 'ENOENT' ? 127 : 126, error: err.message });
    });
    child.on('close', (code, signal) => {
      if (ended) return;
      ended = true;
      if (signal) channel.exit(signal.replace(/^SIG/, ''), false, '');
      else channel.exit(code ?? 0);
      channel.end();
      finish({ what, ...(command === undefined ? {} : { command }), ...(signal ? { signal } : { exit: code }) });
    });
  };
  session.on('shell', (accept, reject) => run(accept as () => ServerChannel | undefined, reject));
  session.on('exec', (accept, reject, info) => run(accept as () => ServerChannel | undefined, reject, info.command));
}

function start(
  channel: ServerChannel,
  argv: Argv,
  env: Record<string, string>,
  o: SessionOptions,
  pty: PseudoTtyInfo | undefined,
): Running {
  if (pty && o.pty) {
    return o.pty.start(channel, argv, { ...env, TERM: pty.term || 'xterm' }, o.cwd, pty);
  }
  const child = spawn(argv.file, [...argv.args], { env, cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin?.on('error', () => {});
  channel.pipe(child.stdin as NodeJS.WritableStream);
  child.stdout?.pipe(channel, { end: false });
  child.stderr?.pipe(channel.stderr, { end: false });
  return { child };
}
