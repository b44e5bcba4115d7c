// One `session` channel: env and pty requests first, then exactly one of shell, exec or the sftp subsystem. Every
// request is answered (accept or reject); the exit status, or the signal that killed the process, goes back to the
// client before the channel closes. Audit events record what started (the command line included) and how it ended;
// PTY sessions are recorded when a recording directory is set, and refused when the recording can't be made.
import { type ChildProcess, spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { AuditScope } from '../audit/audit.ts';
import type { Identity } from './auth.ts';
import { type Argv, sessionArgv } from './command.ts';
import type { PtyLauncher } from './pty.ts';
import { type Recording, type RecordingPolicy, startRecording } from './recording.ts';

export interface SessionOptions {
  readonly identity: Identity;
  /** Events already carry the connection, the key and the session number. */
  readonly audit: AuditScope;
  /** Names this session's recording file (connection id and session number). */
  readonly name: string;
  readonly recording: RecordingPolicy | undefined;
  /** The environment every command starts with (requests add to it). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly shell: string | undefined;
  readonly pty: PtyLauncher | undefined;
  /** Serves the sftp subsystem on an accepted channel; resolves when it ends. */
  readonly sftp: (accept: () => unknown, audit: AuditScope) => Promise<void>;
  /** Called once when the session ends, whatever the outcome. */
  readonly done: () => void;
  readonly now: () => number;
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
  let recording: Recording | undefined;
  let finished = false;
  const started = o.now();
  const finish = (fields: Record<string, unknown>) => {
    if (finished) return;
    finished = true;
    const recorded = recording?.close();
    o.audit.record('ssh.session.end', 'ssh session ended', {
      ...fields,
      durationMs: o.now() - started,
      ...(recorded ? { recordedBytes: recorded.bytes, recordingTruncated: recorded.truncated } : {}),
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
    recording?.resize(info.cols, info.rows);
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
    o.audit.record('ssh.session.refused', 'ssh subsystem refused', { what: 'subsystem', name: info.name }, 'warn');
    reject?.();
  });
  session.on('sftp', (accept) => {
    serving = true;
    o.audit.record('ssh.session.start', 'ssh session started', { what: 'sftp', pty: false });
    o.sftp(accept, o.audit).then(
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
    if (pty && o.recording) {
      try {
        recording = startRecording(
          o.recording,
          o.name,
          {
            width: pty.cols || 80,
            height: pty.rows || 24,
            term: pty.term || 'xterm',
            shell: o.shell,
            command,
            title: `krun ${o.name}`,
          },
          o.now,
        );
      } catch (err) {
        // Recording is required once configured: no unrecorded terminal sessions.
        reject?.();
        finish({
          what,
          ...(command === undefined ? {} : { command }),
          refused: `can't record it: ${(err as Error).message}`,
        });
        return;
      }
    }
    const channel = accept();
    if (!channel) return;
    o.audit.record('ssh.session.start', 'ssh session started', {
      what,
      ...(command === undefined ? {} : { command }),
      pty: pty !== undefined,
      ...(pty ? { term: pty.term } : {}),
      ...(recording ? { recording: recording.path } : {}),
    });
    try {
      running = start(channel, argv, env, o, pty);
      if (recording) tap(channel, running.child, recording);
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

function tap(channel: ServerChannel, child: ChildProcess, recording: Recording): void {
  // Extra 'data' listeners see the same chunks the pipes carry; they never pause or reorder them.
  child.stdout?.on('data', (chunk: Buffer) => recording.output(chunk));
  child.stderr?.on('data', (chunk: Buffer) => recording.output(chunk));
  channel.on('data', (chunk: Buffer) => recording.input(chunk));
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
