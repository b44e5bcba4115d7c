// How the sftp subsystem groups queued requests: which reads or writes are served together, and how their file
// ranges join into one file system call each (end to end, scp, sftp and krun cp move large files through it in
// test/ssh/openssh.test.ts and test/operator/cp.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ReadRequest, type Request, runsOf, takeBatch, type WriteRequest } from '../../src/lib/ssh/sftp.ts';

const h1 = Buffer.from([0, 0, 0, 1]);
const h2 = Buffer.from([0, 0, 0, 2]);
const KiB = 1024;
const read = (reqid: number, offset: number, length = 32 * KiB, handle = h1): ReadRequest => ({
  kind: 'read',
  reqid,
  handle,
  offset,
  length,
});
const write = (reqid: number, offset: number, length = 32 * KiB): WriteRequest => ({
  kind: 'write',
  reqid,
  handle: h1,
  offset,
  data: Buffer.alloc(length),
});
const ids = (rs: readonly { reqid: number }[]) => rs.map((r) => r.reqid);

test('a batch takes the requests of its kind on its handle queued right behind it, within the byte cap', () => {
  // Given reads on one handle, then a read on another handle, then more reads
  const queue: Request[] = [read(2, 32 * KiB), read(3, 64 * KiB), read(4, 0, 32 * KiB, h2), read(5, 96 * KiB)];
  // When a batch starts at the first read
  const batch = takeBatch(read(1, 0), queue);
  // Then it stops at the other handle, which stays queued with what follows
  assert.deepEqual(ids(batch), [1, 2, 3]);
  assert.deepEqual(ids(queue), [4, 5]);

  // Given a write queued behind a read, and a batch that would pass 1 MiB
  const mixed: Request[] = [write(7, 0)];
  assert.deepEqual(ids(takeBatch(read(6, 0), mixed)), [6]);
  const big: Request[] = [read(9, 512 * KiB, 512 * KiB), read(10, 1024 * KiB, 1)];
  assert.deepEqual(ids(takeBatch(read(8, 0, 512 * KiB), big)), [8, 9]);
  // And a single request over the cap is still served, alone
  assert.deepEqual(ids(takeBatch(read(11, 0, 2048 * KiB), [read(12, 0)])), [11]);
});

test('ranges join into runs in offset order; overlapping writes are not joined', () => {
  // Given pipelined writes that arrived a little out of order, with a gap after 96 KiB
  const writes = [write(1, 32 * KiB), write(2, 0), write(3, 64 * KiB), write(4, 160 * KiB)];
  // Then the adjacent ones make one run from 0 to 96 KiB, the rest another
  const runs = runsOf(writes, false);
  assert.deepEqual(
    runs?.map((r) => [r.offset, r.end, ids(r.requests)]),
    [
      [0, 96 * KiB, [2, 1, 3]],
      [160 * KiB, 192 * KiB, [4]],
    ],
  );
  // Given writes that overlap, then they can't be joined: they must land in request order
  assert.equal(runsOf([write(1, 0), write(2, 16 * KiB)], false), undefined);
  // Given reads that overlap, then they share one run covering both
  assert.deepEqual(
    runsOf([read(1, 16 * KiB), read(2, 0)], true)?.map((r) => [r.offset, r.end, ids(r.requests)]),
    [[0, 48 * KiB, [2, 1]]],
  );
});
