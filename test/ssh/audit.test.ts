// The audit trail and session recording of the SSH debug server, driven the way operators reach it: the stock
// OpenSSH client with `krun hbone` as ProxyCommand, authenticated to a real `krun run` by a Google ID token (the
// emulator's issuer). Exact event sequences, the caller the HBONE layer verified on every SSH event, the audit file,
// asciinema recordings, and no token or key material in any log line.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BIN } from '../support/cli.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { type KrunSsh, keygen, opensshOptions, run, startKrunSsh, terminal } from './support.ts';

const root = await mkdtemp(join(tmpdir(), 'krun-ssh-audit-'));
let gcp: GcpEmulator;
before(async () => {
  gcp = await startGcpEmulator();
});
after(async () => {
  await gcp?.stop();
  await rm(root, { recursive: true, force: true });
});
let n = 0;
const fresh = async () => {
  const dir = join(root, `t${++n}`);
  await mkdir(dir, { recursive: true });
  return dir;
};

const OPERATOR = 'operator@krun-test-project.iam.gserviceaccount.com';
const AUDIENCE = 'krun-audit-test';

type Line = Record<string, unknown>;

/** The audit events krun logged so far (JSON lines with an `audit` field). */
function auditLines(k: KrunSsh): Line[] {
  return k.krun
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line)
    .filter((l) => typeof l.audit === 'string');
}

async function waitForEvents(k: KrunSsh, event: string, count: number): Promise<void> {
  await waitFor(
    `${count} ${event} events`,
    async () => (auditLines(k).filter((l) => l.audit === event).length >= count ? true : undefined),
    { timeoutMs: 20_000 },
  );
}

interface World {
  readonly dir: string;
  readonly k: KrunSsh;
  readonly token: string;
  readonly ssh: string[];
  readonly fingerprint: (pubPath: string) => Promise<string>;
}

/** krun run with in-process JWT authentication on HBONE, the key authorized, and the client's OpenSSH options. */
async function world(t: { after(f: () => Promise<void>): void }, key: { pub: string }, env: Record<string, string>) {
  const dir = await fresh();
  const k = await startKrunSsh(join(dir, 'pod'), {
    SSH_AUTH: key.pub,
    KRUN_HBONE_JWT_ISSUER: gcp.issuer.iss,
    KRUN_HBONE_JWKS_URI: gcp.issuer.jwksUri,
    KRUN_HBONE_JWT_AUDIENCE: AUDIENCE,
    ...env,
  });
  t.after(() => k.stop());
  const token = gcp.state.idToken(OPERATOR, AUDIENCE);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  const proxy = `${process.execPath} ${BIN} hbone --token-file ${tokenFile} http://127.0.0.1:${k.hbonePort}/_hbone/ssh`;
  const ssh = opensshOptions(proxy, join(dir, 'known_hosts'));
  const fingerprint = async (pubPath: string) =>
    (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubPath])).stdout.toString().split(' ')[1] as string;
  return { dir, k, token, ssh, fingerprint } satisfies World;
}

/** Events as [name, connection number (1 = the first connection seen), picked fields]. */
function sequence(lines: readonly Line[], pick: (l: Line) => Record<string, unknown>): unknown[] {
  const conns: unknown[] = [];
  return lines.map((l) => {
    if (!conns.includes(l.conn)) conns.push(l.conn);
    return [l.audit, conns.indexOf(l.conn) + 1, pick(l)];
  });
}

test('a refused key, then a login running a command that exits 3: the exact audit events, in the log and the file', async (t) => {
  // Given krun run that authorizes one key, requires a Google ID token on HBONE, and keeps an audit file
  const keysDir = await fresh();
  const [allowed, stranger] = [await keygen(keysDir, 'allowed'), await keygen(keysDir, 'stranger')];
  const auditFile = join(keysDir, 'audit.jsonl');
  const w = await world(t, allowed, { KRUN_AUDIT_FILE: auditFile });
  // When another key tries to log in, it is refused
  const refused = await run('ssh', [...w.ssh, '-i', stranger.path, 'root@krun', 'true']);
  assert.equal(refused.status, 255);
  assert.match(refused.stderr, /Permission denied \(publickey\)/);
  await waitForEvents(w.k, 'tunnel.close', 1);
  // And the authorized key runs a command that exits 3
  const r = await run('ssh', [...w.ssh, '-i', allowed.path, 'root@krun', 'echo hello; exit 3']);
  assert.equal(r.status, 3, r.stderr);
  assert.equal(r.stdout.toString(), 'hello\n');
  await waitForEvents(w.k, 'tunnel.close', 2);
  // Then the audit trail holds exactly these events, each SSH event naming the tunnel and the caller it carried
  const lines = auditLines(w.k);
  const [strangerFp, allowedFp] = [
    await w.fingerprint(`${stranger.path}.pub`),
    await w.fingerprint(`${allowed.path}.pub`),
  ];
  const caller = { caller: OPERATOR, callerVerifiedBy: 'jwt' };
  assert.deepEqual(
    sequence(lines, (l) => {
      // Which end a tunnel saw first (and so `ended`) depends on when OpenSSH kills its ProxyCommand.
      const {
        audit,
        conn,
        severity,
        time,
        message,
        component,
        from,
        peer,
        durationMs,
        bytesIn,
        bytesOut,
        ended,
        error,
        ...rest
      } = l;
      return rest;
    }),
    [
      ['tunnel.open', 1, { target: 'ssh', port: w.k.sshPort, ...caller, transport: 'h2' }],
      [
        'ssh.auth.reject',
        1,
        { ...caller, user: 'root', method: 'publickey', reason: 'key not authorized', key: strangerFp, signed: false },
      ],
      ['tunnel.close', 1, { target: 'ssh', port: w.k.sshPort, ...caller, transport: 'h2' }],
      ['tunnel.open', 2, { target: 'ssh', port: w.k.sshPort, ...caller, transport: 'h2' }],
      ['ssh.auth.accept', 2, { ...caller, user: 'root', method: 'publickey', key: allowedFp, via: 'env SSH_AUTH' }],
      [
        'ssh.session.start',
        2,
        {
          ...caller,
          user: 'root',
          key: allowedFp,
          session: 1,
          what: 'exec',
          command: 'echo hello; exit 3',
          pty: false,
        },
      ],
      [
        'ssh.session.end',
        2,
        { ...caller, user: 'root', key: allowedFp, session: 1, what: 'exec', command: 'echo hello; exit 3', exit: 3 },
      ],
      ['tunnel.close', 2, { target: 'ssh', port: w.k.sshPort, ...caller, transport: 'h2' }],
    ],
  );
  // And the SSH events name the tunnel's upstream address as their source; the tunnel counts bytes and time
  const [open2, close2] = lines.filter((l) => l.audit === 'tunnel.close' || l.audit === 'tunnel.open').slice(2);
  assert.equal(open2?.conn, close2?.conn);
  assert.ok((close2?.bytesIn as number) > 1000 && (close2?.bytesOut as number) > 1000, 'SSH handshakes both ways');
  assert.equal(typeof close2?.durationMs, 'number');
  assert.ok(close2?.ended === 'cleanly' || close2?.ended === 'reset');
  assert.ok(lines.every((l) => l.component === 'audit'));
  // And the audit file holds the same events, readable by krun's user only
  assert.equal((await stat(auditFile)).mode & 0o777, 0o600);
  const fileLines = (await readFile(auditFile, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
  assert.deepEqual(
    fileLines.map((l) => [l.audit, l.conn, l.message]),
    lines.map((l) => [l.audit, l.conn, l.message]),
  );
  // And neither the token nor the private keys appear in any log line, the file, or the client's stderr
  assertNoSecrets([w.k.krun.stderr(), await readFile(auditFile, 'utf8'), refused.stderr, r.stderr], w.token, [
    await readFile(allowed.path, 'utf8'),
    await readFile(stranger.path, 'utf8'),
  ]);
});

test('sftp put, rename and remove are audited with paths, open flags and bytes written', async (t) => {
  // Given krun run with one authorized key
  const keysDir = await fresh();
  const key = await keygen(keysDir, 'operator');
  const w = await world(t, key, {});
  const local = join(w.dir, 'upload.bin');
  await writeFile(local, Buffer.alloc(70_000, 7));
  // When sftp uploads a file, renames it and removes it
  const batch = join(w.dir, 'batch');
  await writeFile(
    batch,
    `put ${local} /tmp/audit-${n}.bin\nrename /tmp/audit-${n}.bin /tmp/audit-${n}.moved\nrm /tmp/audit-${n}.moved\n`,
  );
  const r = await run('sftp', [...w.ssh, '-i', key.path, '-b', batch, 'root@krun']);
  assert.equal(r.status, 0, r.stderr);
  await waitForEvents(w.k, 'tunnel.close', 1);
  // Then the session's events are exactly these, with absolute paths and the byte total of the written handle
  const file = `/tmp/audit-${n}.bin`;
  const moved = `/tmp/audit-${n}.moved`;
  assert.deepEqual(
    auditLines(w.k)
      .filter((l) => String(l.audit).startsWith('sftp.') || String(l.audit).startsWith('ssh.session'))
      .map((l) => {
        const { severity, time, message, component, conn, caller, callerVerifiedBy, from, user, key: k, ...rest } = l;
        assert.equal(caller, OPERATOR);
        const { durationMs, ...stable } = rest;
        return stable;
      }),
    [
      { audit: 'ssh.session.start', session: 1, what: 'sftp', pty: false },
      { audit: 'sftp.open', session: 1, path: file, flags: 'write,creat,trunc' },
      { audit: 'sftp.close', session: 1, path: file, bytesRead: 0, bytesWritten: 70_000 },
      { audit: 'sftp.rename', session: 1, path: file, to: moved },
      { audit: 'sftp.remove', session: 1, path: moved },
      { audit: 'ssh.session.end', session: 1, what: 'sftp' },
    ],
  );
});

test('a PTY session is recorded in asciinema v2: header, shell output, no input; the file is 0600', async (t) => {
  // Given krun run recording terminal sessions
  const keysDir = await fresh();
  const key = await keygen(keysDir, 'operator');
  const recordDir = join(keysDir, 'recordings');
  const w = await world(t, key, { KRUN_SSH_RECORD_DIR: recordDir });
  // When an interactive shell on a 100x30 xterm prints something the typed text doesn't contain, and exits
  const term = terminal(['ssh', ...w.ssh, '-i', key.path, '-q', '-tt', 'root@krun'], 100, 30, 'xterm-256color');
  term.type('echo "rec-$((6*7))"; exit 4\r');
  assert.equal(await term.exited, 4);
  assert.match(term.output(), /^rec-42$/m);
  await waitForEvents(w.k, 'ssh.session.end', 1);
  // Then one recording exists, named by time and the connection, readable by krun's user only
  const start = auditLines(w.k).find((l) => l.audit === 'ssh.session.start') as Line;
  const names = await readdir(recordDir);
  assert.deepEqual(names, [`${String(start.recording).split('/').pop()}`]);
  assert.match(names[0] as string, new RegExp(`^\\d{8}T\\d{6}Z-${start.conn}-1\\.cast$`));
  const path = join(recordDir, names[0] as string);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.equal((await stat(recordDir)).mode & 0o777, 0o700);
  // And it is asciinema v2: the header with the terminal's size and TERM, then [time, "o", data] events
  const [header, ...events] = (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);
  const h = header as Record<string, unknown>;
  assert.equal(h.version, 2);
  assert.equal(h.width, 100);
  assert.equal(h.height, 30);
  assert.equal((h.env as Record<string, string>).TERM, 'xterm-256color');
  assert.equal(typeof h.timestamp, 'number');
  const output = (events as [number, string, string][])
    .map(([time, code, data]) => {
      assert.equal(typeof time, 'number');
      assert.equal(code, 'o', 'only output: input is not recorded by default');
      return data;
    })
    .join('');
  assert.match(output, /rec-42\r\n/);
  // And the end event says how big the recording is
  const end = auditLines(w.k).find((l) => l.audit === 'ssh.session.end') as Line;
  assert.deepEqual([end.exit, end.recordingTruncated], [4, false]);
  assert.equal(end.recordedBytes, (await stat(path)).size);
});

test('recordings are capped with a truncation marker, and record input only when asked', async (t) => {
  // Given krun run recording input too, with a 4 KiB cap
  const keysDir = await fresh();
  const key = await keygen(keysDir, 'operator');
  const recordDir = join(keysDir, 'recordings');
  const w = await world(t, key, {
    KRUN_SSH_RECORD_DIR: recordDir,
    KRUN_SSH_RECORD_INPUT: 'true',
    KRUN_SSH_RECORD_MAX_BYTES: '4096',
  });
  // When a terminal session types a command that prints far more than the cap
  const term = terminal(['ssh', ...w.ssh, '-i', key.path, '-q', '-tt', 'root@krun'], 80, 24, 'xterm');
  term.type('seq 1 5000; exit 0\r');
  assert.equal(await term.exited, 0);
  assert.match(term.output(), /^5000$/m);
  await waitForEvents(w.k, 'ssh.session.end', 1);
  // Then the recording stops near the cap with a marker, and the typed command is in it as input
  const [name] = await readdir(recordDir);
  const text = await readFile(join(recordDir, name as string), 'utf8');
  const events = text
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => JSON.parse(l) as [number, string, string]);
  assert.deepEqual(events.at(-1)?.slice(1), ['m', 'krun: recording truncated at 4096 bytes']);
  assert.ok(Buffer.byteLength(text) <= 4096 + 100, `${Buffer.byteLength(text)} bytes`);
  assert.ok(!text.includes('5000\\r\\n'), 'the output past the cap is not recorded');
  assert.match(
    events
      .filter((e) => e[1] === 'i')
      .map((e) => e[2])
      .join(''),
    /^seq 1 5000; exit 0[\r\n]/, // \r, or \n when typed before ssh made its terminal raw
  );
  const end = auditLines(w.k).find((l) => l.audit === 'ssh.session.end') as Line;
  assert.equal(end.recordingTruncated, true);
});

/** Neither the token (nor its signature) nor any line of a private key appears in the texts. */
function assertNoSecrets(texts: readonly string[], token: string, privateKeys: readonly string[]): void {
  const signature = token.split('.')[2] as string;
  const keyLines = privateKeys.flatMap((k) => k.split('\n').filter((l) => l.length >= 20 && !l.startsWith('-----')));
  assert.ok(keyLines.length > 0 || privateKeys.length === 0);
  for (const text of texts) {
    assert.ok(!text.includes(token), 'the token is not logged');
    assert.ok(!text.includes(signature), "the token's signature is not logged");
    for (const line of keyLines) assert.ok(!text.includes(line), 'no private key material is logged');
  }
}
