// WatchedCollection against a scripted API server: list, then watch from the list's resourceVersion; events applied
// in order, bookmarks followed, a watch the server ends resumed from the last version, 410 Gone (as an event and as
// an answer) relisted, and a broken watch resumed after a backoff that grows and resets once a watch works again.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Clock } from '../../src/lib/context.ts';
import { KubeApiError, type KubeClient, type KubeObject } from '../../src/lib/kube/client.ts';
import { WatchedCollection } from '../../src/lib/kube/watch.ts';
import { silentLogger } from '../../src/lib/log/logger.ts';

const svc = (name: string, rv: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'apps', resourceVersion: rv },
});
const line = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;

/** A watch response: these lines, then a clean end (the server's timeout) or a cut connection. */
function response(text: string, end: 'complete' | 'cut'): PassThrough {
  const res = new PassThrough();
  // Split mid-line: events may span chunks.
  setImmediate(() => {
    res.write(text.slice(0, 7));
    res.write(text.slice(7));
    setImmediate(() => {
      if (end === 'complete') {
        Object.assign(res, { complete: true });
        res.end();
      } else res.destroy();
    });
  });
  return res;
}

test('a watched collection: events, bookmarks, resume, 410 relist, backoff after a broken watch', async () => {
  const requests: string[] = [];
  const sleeps: number[] = [];
  const stop = new AbortController();
  let lists = 0;
  const watches: (() => PassThrough | Error)[] = [
    // 1: from the list's version: b added, a modified, a bookmark, then the server ends the watch.
    () =>
      response(
        line('ADDED', svc('b', '11')) + line('MODIFIED', svc('a', '12')) + line('BOOKMARK', svc('', '15')),
        'complete',
      ),
    // 2: from the bookmark's version: b deleted, then the connection is cut.
    () => response(line('DELETED', svc('b', '16')), 'cut'),
    // 3 and 4: the server is unreachable twice (backoff grows).
    () => new Error('connect ECONNREFUSED'),
    () => new Error('connect ECONNREFUSED'),
    // 5: back, but the version is too old: an ERROR event with 410 -> relist.
    () => response(line('ERROR', { kind: 'Status', code: 410, message: 'too old resource version: 16 (20)' }), 'cut'),
    // 6: after the relist; 410 as the answer itself -> relist again.
    () => new KubeApiError('gone', 410, 'Expired', []),
    // 7: works: c added, then cut (the backoff starts over from the first value).
    () => response(line('ADDED', svc('c', '31')), 'cut'),
  ];
  let finished = () => {};
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const client = {
    get: async (path: string) => {
      requests.push(`list ${path}`);
      lists += 1;
      const items = lists === 1 ? [svc('a', '5')] : [svc('a', '20'), svc('z', '21')];
      return { items, metadata: { resourceVersion: lists === 1 ? '10' : String(20 + lists) } };
    },
    stream: async (path: string) => {
      const q = new URL(path, 'https://x').searchParams;
      requests.push(`watch rv=${q.get('resourceVersion')} bookmarks=${q.get('allowWatchBookmarks')}`);
      const next = watches.shift();
      if (!next) {
        finished();
        return new PassThrough();
      }
      const r = next();
      if (r instanceof Error) throw r;
      return r;
    },
  } as unknown as KubeClient;
  const clock: Clock = {
    now: () => new Date(),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  };
  const snapshots: string[] = [];
  const c = new WatchedCollection({
    client,
    path: '/api/v1/services',
    labelSelector: 'krun.dev/registration',
    log: silentLogger,
    clock,
    signal: stop.signal,
    backoffMs: [100, 350],
    onChange: () => snapshots.push([...c.items.keys()].sort().join(',')),
  });
  await c.start();
  assert.deepEqual([...c.items.keys()], ['apps/a']);
  await done;
  stop.abort();
  // Each change as it came: the list, b added, a modified, b deleted, two relists, c added.
  assert.deepEqual(snapshots, [
    'apps/a',
    'apps/a,apps/b',
    'apps/a,apps/b',
    'apps/a',
    'apps/a,apps/z',
    'apps/a,apps/z',
    'apps/a,apps/c,apps/z',
  ]);
  assert.equal(c.items.get('apps/a')?.metadata.resourceVersion, '20');
  assert.deepEqual(requests, [
    'list /api/v1/services?labelSelector=krun.dev%2Fregistration',
    'watch rv=10 bookmarks=true',
    'watch rv=15 bookmarks=true',
    'watch rv=16 bookmarks=true',
    'watch rv=16 bookmarks=true',
    'watch rv=16 bookmarks=true',
    'list /api/v1/services?labelSelector=krun.dev%2Fregistration',
    'watch rv=22 bookmarks=true',
    'list /api/v1/services?labelSelector=krun.dev%2Fregistration',
    'watch rv=23 bookmarks=true',
    'watch rv=31 bookmarks=true',
  ]);
  // Cut after delivering -> first backoff; refused twice -> doubled, capped; after watch 7 delivered -> first again.
  assert.deepEqual(sleeps, [100, 200, 350, 100]);
});
