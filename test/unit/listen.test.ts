// Local forwarding ports: the bound address as users write it, and a taken port as an error with the way out.
import assert from 'node:assert/strict';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { KrunError } from '../../src/lib/errors.ts';
import { listenLocal, untilAborted } from '../../src/lib/net/listen.ts';

test('listenLocal resolves with host:port, brackets for IPv6, and names a taken port with the hint', async (t) => {
  const first = createServer();
  const second = createServer();
  const v6 = createServer();
  t.after(() => {
    for (const s of [first, second, v6]) s.close();
  });
  const bound = await listenLocal(first, 0, '127.0.0.1', 'pick another port');
  const port = (first.address() as AddressInfo).port;
  assert.equal(bound, `127.0.0.1:${port}`);
  assert.equal(await listenLocal(v6, 0, '::1', 'unused'), `[::1]:${(v6.address() as AddressInfo).port}`);
  await assert.rejects(listenLocal(second, port, '127.0.0.1', 'pick another port'), (err) => {
    assert.ok(err instanceof KrunError);
    assert.match(err.message, new RegExp(`^can't listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    assert.deepEqual(err.hints, ['pick another port']);
    return true;
  });
});

test('untilAborted stops, then rejects with the reason, also for a signal aborted before', async () => {
  const stopped: string[] = [];
  const controller = new AbortController();
  const running = untilAborted(controller.signal, () => stopped.push('late'));
  controller.abort(new Error('bye'));
  await assert.rejects(running, /bye/);
  await assert.rejects(
    untilAborted(AbortSignal.abort(new Error('gone')), () => stopped.push('early')),
    /gone/,
  );
  assert.deepEqual(stopped, ['late', 'early']);
});
