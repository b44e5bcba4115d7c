// The sftp subsystem's back-pressure (src/lib/ssh/sftp-credit.ts): a client that fires WRITEs without waiting for
// answers can't make the server queue more than the limit plus one channel window, and everything it sent still
// lands once the server catches up. The server's file system is held up deterministically: every libuv pool thread
// is parked in an open() of a FIFO until the test releases it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import ssh2, { type SFTPWrapper } from 'ssh2';
import type { AuditScope } from '../../src/lib/audit/audit.ts';
import { serveSftp } from '../../src/lib/ssh/sftp.ts';
import type { QueueCredit } from '../../src/lib/ssh/sftp-credit.ts';

const MiB = 1024 * 1024;
const LIMIT = { bytes: 1 * MiB, requests: 64 };
/** ssh2's channel window: what a client may still send after the server stops topping it up. */
const WINDOW = 2 * MiB;
const dir = mkdtempSync(join(tmpdir(), 'krun-sftp-credit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const audit: AuditScope = { record: () => {}, with: () => audit };

test('a client firing WRITEs without waiting is held to the queue limit, and all its data lands', async () => {
  // Given the sftp subsystem behind an ssh2 server, with a 1 MiB / 64-request queue limit
  let credit: QueueCredit | undefined;
  let maxBytes = 0;
  let served: Promise<void> | undefined;
  const server = new ssh2.Server({ hostKeys: [ssh2.utils.generateKeyPairSync('ed25519').private] }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () =>
      client.on('session', (accept) =>
        accept().on('sftp', (acceptSftp) => {
          served = serveSftp(acceptSftp, {
            cwd: dir,
            audit,
            queueLimit: LIMIT,
            onQueued: (c) => {
              credit = c;
              maxBytes = Math.max(maxBytes, c.queued.bytes);
            },
          });
        }),
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new ssh2.Client();
  after(() => {
    client.end();
    server.close();
  });
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, username: 'u', password: 'p' });
  });
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
    client.sftp((err, s) => (err ? reject(err) : resolve(s))),
  );
  const handle = await new Promise<Buffer>((resolve, reject) =>
    sftp.open('copy.bin', 'w', (err, h) => (err ? reject(err) : resolve(h))),
  );

  // And the server's file system stalled: every pool thread waits in open() on a FIFO nobody writes to
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const fifos = Array.from({ length: threads }, (_, i) => join(dir, `stall-${i}`));
  for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
  const stalls = fifos.map((fifo) => open(fifo, 'r'));
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    for (const fifo of fifos) closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    for (const stall of await Promise.all(stalls)) await stall.close();
  };
  after(release); // a failed assertion must not leave the pool parked

  // When the client fires 16 MiB of WRITEs without waiting for any answer
  const payload = randomBytes(16 * MiB);
  const chunk = 32 * 1024; // one request each (ssh2 sends a bigger write as requests one after another)
  const writes: Promise<void>[] = [];
  for (let at = 0; at < payload.length; at += chunk) {
    writes.push(
      new Promise((resolve, reject) =>
        sftp.write(handle, payload, at, chunk, at, (err) => (err ? reject(err) : resolve())),
      ),
    );
  }
  // And the server's queue stops growing (the client's window is used up)
  let last = -1;
  while (!credit?.paused || credit.queued.bytes !== last) {
    last = credit?.queued.bytes ?? -1;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  // Then it holds at most the limit, one window and one packet, far from the 16 MiB sent
  assert.ok(maxBytes >= LIMIT.bytes, `the queue reached its limit (${maxBytes} bytes)`);
  assert.ok(maxBytes <= LIMIT.bytes + WINDOW + 64 * 1024, `queued ${maxBytes} bytes`);

  // When the file system comes back
  await release();
  // Then every WRITE is answered, and the file holds exactly what was sent
  await Promise.all(writes);
  await new Promise<void>((resolve, reject) => sftp.close(handle, (err) => (err ? reject(err) : resolve())));
  assert.ok(readFileSync(join(dir, 'copy.bin')).equals(payload), 'the copy differs from what was sent');
  assert.equal(credit?.queued.bytes, 0);
  assert.equal(credit?.paused, false);
  sftp.end();
  await served;
});
