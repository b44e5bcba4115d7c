// The gate's pure parts: SNI names, the registry's allow-list (with a fake API server), mesh-env's diff, metrics text,
// and the default tunnel target being the one `krun run` serves the mesh port as.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, mock, test } from 'node:test';
import { systemClock } from '../../src/lib/context.ts';
import { DEFAULT_TARGET } from '../../src/lib/gate/defaults.ts';
import { startGate } from '../../src/lib/gate/gate.ts';
import { meshEnvChanges } from '../../src/lib/gate/mesh-env.ts';
import { Metrics } from '../../src/lib/gate/metrics.ts';
import { RefusalLog } from '../../src/lib/gate/refusal-log.ts';
import { CONVENTION_CACHE_MS, CONVENTION_CACHE_SIZE, cloudRunOrigin, Registry } from '../../src/lib/gate/registry.ts';
import { parseMeshSni } from '../../src/lib/gate/sni.ts';
import { refreshedAhead } from '../../src/lib/gate/token-refresh.ts';
import { tunnelRequest } from '../../src/lib/gate/tunnel-method.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import type { KubeClient, KubeObject } from '../../src/lib/kube/client.ts';
import { type Logger, silentLogger } from '../../src/lib/log/logger.ts';
import { waitFor } from '../support/control-plane/wait.ts';
import { ManualClock } from '../support/manual-clock.ts';

describe('gate units', () => {
  test('SNI names: the Istio form with port and subset, the plain host, and what is not a mesh name', () => {
    assert.deepEqual(parseMeshSni('outbound_.8080_._.fortio.apps.svc.cluster.local'), {
      host: 'fortio.apps.svc.cluster.local',
      name: 'fortio',
      namespace: 'apps',
      port: 8080,
    });
    assert.deepEqual(
      parseMeshSni('outbound_.80_.v1_.Fortio.Apps.svc.cluster.local')?.host,
      'fortio.apps.svc.cluster.local',
    );
    assert.deepEqual(parseMeshSni('fortio.apps.svc'), {
      host: 'fortio.apps.svc.cluster.local',
      name: 'fortio',
      namespace: 'apps',
    });
    for (const sni of [
      'example.com',
      'fortio.svc.cluster.local',
      'a.b.c.svc.cluster.local',
      'outbound_.99999_._.a.b.svc.cluster.local',
      'outbound_.x_._.a.b.svc.cluster.local',
      'inbound_.8080_._.a.b.svc.cluster.local',
    ]) {
      assert.equal(parseMeshSni(sni), undefined, sni);
    }
  });

  test('annotation URLs: only bare https service URLs', () => {
    assert.deepEqual(cloudRunOrigin('https://fortio-abc-uc.a.run.app/'), { origin: 'https://fortio-abc-uc.a.run.app' });
    assert.deepEqual(cloudRunOrigin('http://fortio.a.run.app'), {
      error: '"http://fortio.a.run.app" is not an https URL',
    });
    assert.ok('error' in cloudRunOrigin('https://fortio.a.run.app/_hbone/22'));
    assert.ok('error' in cloudRunOrigin('fortio'));
  });

  test("registry: registered Services and ServiceEntries only; the original's convention only when enabled", async () => {
    const annotated = (kind: string, name: string, url: string, hosts?: string[]): KubeObject => ({
      apiVersion: 'v1',
      kind,
      metadata: { name, namespace: 'apps', annotations: { 'krun.dev/cloud-run-url': url } },
      ...(hosts ? { spec: { hosts } } : {}),
    });
    const lists: string[] = [];
    const stop = new AbortController();
    const client = {
      get: async (path: string) => {
        lists.push(path);
        const items = path.includes('serviceentries')
          ? [
              annotated('ServiceEntry', 'fortio-abcdefghij-uc', 'https://fortio-abcdefghij-uc.a.run.app', [
                'fortio-abcdefghij-uc.apps.svc.cluster.local',
              ]),
            ]
          : [
              annotated('Service', 'fortio', 'https://fortio-abcdefghij-uc.a.run.app'),
              annotated('Service', 'bad', 'ftp://x'),
            ];
        return { items, metadata: { resourceVersion: '1' } };
      },
      // The watches stay open and quiet.
      stream: async () => new PassThrough(),
      find: async (path: string) => (path.endsWith('/services/legacy-abcdefghij-uc') ? {} : undefined),
    } as unknown as KubeClient;
    const make = (nameFallback: boolean) =>
      new Registry({
        client,
        log: silentLogger,
        clock: systemClock,
        nameFallback,
        signal: stop.signal,
      });
    const strict = make(false);
    await strict.start();
    assert.deepEqual(lists.slice(0, 2), [
      '/api/v1/services?labelSelector=krun.dev%2Fregistration',
      '/apis/networking.istio.io/v1/serviceentries?labelSelector=krun.dev%2Fregistration',
    ]);
    const fortio = await strict.resolve('outbound_.8080_._.fortio.apps.svc.cluster.local');
    assert.ok(fortio.ok);
    assert.deepEqual(fortio.destination, {
      origin: 'https://fortio-abcdefghij-uc.a.run.app',
      source: 'service apps/fortio',
    });
    const byEntry = await strict.resolve('fortio-abcdefghij-uc.apps.svc.cluster.local');
    assert.ok(byEntry.ok);
    assert.equal(byEntry.destination.source, 'serviceentry apps/fortio-abcdefghij-uc');
    assert.deepEqual(await strict.resolve('bad.apps.svc.cluster.local'), {
      ok: false,
      reason: 'no registration for bad.apps.svc.cluster.local (krun register bad -n apps)',
    });
    assert.equal((await strict.resolve('legacy-abcdefghij-uc.apps.svc.cluster.local')).ok, false);
    // With the original's convention: a Service named like a URL prefix that exists, nothing else.
    const legacy = make(true);
    await legacy.start();
    const found = await legacy.resolve('outbound_.8080_._.legacy-abcdefghij-uc.apps.svc.cluster.local');
    assert.ok(found.ok);
    assert.deepEqual(found.destination, {
      origin: 'https://legacy-abcdefghij-uc.a.run.app',
      source: 'name convention apps/legacy-abcdefghij-uc',
    });
    assert.equal((await legacy.resolve('missing-abcdefghij-uc.apps.svc.cluster.local')).ok, false);
    assert.equal((await legacy.resolve('plainname.apps.svc.cluster.local')).ok, false);
    stop.abort();
  });

  test("registry: the convention's lookups are cached bounded and for a while, so a deleted Service stops routing", async () => {
    const finds: string[] = [];
    let legacyExists = true;
    const client = {
      get: async () => ({ items: [], metadata: { resourceVersion: '1' } }),
      stream: async () => new PassThrough(),
      find: async (path: string) => {
        finds.push(path);
        return path.endsWith('/legacy-abcdefghij-uc') && legacyExists ? {} : undefined;
      },
    } as unknown as KubeClient;
    const clock = new ManualClock();
    const stop = new AbortController();
    const registry = new Registry({ client, log: silentLogger, clock, nameFallback: true, signal: stop.signal });
    await registry.start();
    const legacy = 'legacy-abcdefghij-uc.apps.svc.cluster.local';
    assert.ok((await registry.resolve(legacy)).ok);
    assert.ok((await registry.resolve(legacy)).ok);
    assert.equal(finds.length, 1, 'a second connection within the window is answered from the cache');
    // The Service is deleted: once the cached answer is old, the gate asks again and refuses.
    legacyExists = false;
    clock.advance(CONVENTION_CACHE_MS);
    assert.equal((await registry.resolve(legacy)).ok, false);
    assert.equal(finds.length, 2);
    // Clients naming ever new Services don't grow the cache without bound: the oldest answers make room.
    for (let i = 0; i < CONVENTION_CACHE_SIZE; i++) {
      await registry.resolve(`s${i}-abcdefghij-uc.apps.svc.cluster.local`);
    }
    const before = finds.length;
    await registry.resolve(legacy);
    assert.equal(finds.length, before + 1, 'the oldest entry was evicted');
    await registry.resolve(`s${CONVENTION_CACHE_SIZE - 1}-abcdefghij-uc.apps.svc.cluster.local`);
    assert.equal(finds.length, before + 1, 'the newest entries are still cached');
    stop.abort();
  });

  test('the gate closes connections beyond its cap on pending ClientHellos at once, and accepts again after', async () => {
    const metrics = new Metrics();
    const gate = await startGate({
      listen: { host: '127.0.0.1', port: 0 },
      resolve: async () => ({ ok: false, reason: 'none registered' }),
      tokensFor: () => {
        throw new Error('no tunnel in this test');
      },
      target: DEFAULT_TARGET,
      maxStreams: 10,
      keepAliveMs: 1000,
      helloTimeoutMs: 60_000,
      maxPendingHellos: 2,
      log: silentLogger,
      metrics,
    });
    const port = gate.address.port;
    const connect = async () => {
      const socket = createConnection(port, '127.0.0.1');
      await once(socket, 'connect');
      return socket;
    };
    const closed = (socket: Socket) => (socket.destroyed ? Promise.resolve() : once(socket, 'close'));
    const accepted = () => metrics.value('krun_gate_connections_total');
    try {
      // Two silent clients fill the cap (once the gate has accepted them) ...
      const silent = [await connect(), await connect()];
      await waitFor('two accepted', async () => (accepted() === 2 ? true : undefined));
      // ... so a third is closed at once as busy, not kept for the hello timeout
      const third = await connect();
      await closed(third);
      assert.equal(metrics.value('krun_gate_rejected_total', { reason: 'busy' }), 1);
      // When one of them goes, a new client is read again (and refused for what it sent, not as busy)
      silent[0]?.destroy();
      await waitFor('one gone', async () =>
        metrics.value('krun_gate_rejected_total', { reason: 'closed' }) === 1 ? true : undefined,
      );
      const next = await connect();
      next.write('GET / HTTP/1.1\r\n\r\n');
      await closed(next);
      assert.equal(metrics.value('krun_gate_rejected_total', { reason: 'not-tls' }), 1);
      assert.equal(metrics.value('krun_gate_rejected_total', { reason: 'busy' }), 1);
      silent[1]?.destroy();
    } finally {
      await gate.drain(0);
    }
  });

  test('refusal log: the first N per reason and window in full, then one summary line with the count', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const lines: [string, Record<string, unknown>][] = [];
      const record = (message: string, fields: Record<string, unknown> = {}) => lines.push([message, fields]);
      const log = { debug: record, info: record, warn: record, error: record } as unknown as Logger;
      const refusals = new RefusalLog({ log, perWindow: 3, windowMs: 60_000 });
      for (let i = 0; i < 1000; i++) refusals.refused('warn', 'unknown-sni', { peer: `p${i}` });
      refusals.refused('warn', 'not-tls', { peer: 'q' });
      assert.deepEqual(
        lines.map(([m, f]) => `${m} ${f.reason} ${f.peer}`),
        [
          'connection closed unknown-sni p0',
          'connection closed unknown-sni p1',
          'connection closed unknown-sni p2',
          'connection closed not-tls q',
        ],
      );
      // When the minute is over, one line says how many were not logged; a quiet reason writes none.
      mock.timers.tick(60_000);
      assert.deepEqual(lines.slice(4), [
        ['connections closed without a log line', { reason: 'unknown-sni', count: 997, logged: 3, windowSeconds: 60 }],
      ]);
      // The next window logs in full again; flush (at shutdown) sums up what is pending.
      for (let i = 0; i < 5; i++) refusals.refused('warn', 'unknown-sni', { peer: `r${i}` });
      refusals.flush();
      assert.equal(lines.length, 4 + 1 + 3 + 1);
      assert.deepEqual(lines.at(-1)?.[1], { reason: 'unknown-sni', count: 2, logged: 3, windowSeconds: 60 });
    } finally {
      mock.timers.reset();
    }
  });

  test('ID tokens: handed out from the cache, refreshed in the background after 80% of their life, never stale', async () => {
    // Tokens with a 101 s lifetime (100 s once the second iat may have been rounded down by); the clock is the test's.
    let now = 1_000_000;
    const clock = { now: () => new Date(now), sleep: async () => {} };
    let minted = 0;
    let fail = false;
    const jwt = (n: number) => {
      const claims = Buffer.from(JSON.stringify({ iat: 1000, exp: 1101, n })).toString('base64url');
      return `e30.${claims}.sig`;
    };
    const source = {
      token: async () => {
        if (fail) throw new Error('metadata server down');
        minted += 1;
        return jwt(minted);
      },
    };
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => warnings.push(m) } as Logger;
    const tokens = refreshedAhead(source, clock, log, 'https://a');
    assert.equal(await tokens.token(), jwt(1));
    now += 79_000;
    assert.equal(await tokens.token(), jwt(1), 'cached before 80%');
    assert.equal(minted, 1);
    // After 80%: the current token now, a new one fetched behind it for the next tunnel.
    now += 2_000;
    assert.equal(await tokens.token(), jwt(1));
    await new Promise((r) => setImmediate(r));
    assert.equal(minted, 2);
    assert.equal(await tokens.token(), jwt(2));
    // A refresh that fails while the token is still good costs nothing but a warning.
    now += 85_000;
    fail = true;
    assert.equal(await tokens.token(), jwt(2));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings, ['cannot refresh the ID token; the current one is still valid']);
    // In its last 5% it is not handed out: the tunnel waits for a new one (or fails with the source's error).
    now += 12_000;
    await assert.rejects(tokens.token(), /metadata server down/);
    fail = false;
    assert.equal(await tokens.token(), jwt(3));
  });

  test('tunnel requests: POST /_hbone/TARGET, or CONNECT with the target as authority', () => {
    assert.deepEqual(tunnelRequest('post', 'https://a.run.app', '15003'), {
      headers: { ':method': 'POST', ':path': '/_hbone/15003', 'content-type': 'application/octet-stream' },
      describe: 'https://a.run.app/_hbone/15003',
    });
    assert.deepEqual(tunnelRequest('connect', 'https://a.run.app', '15003'), {
      headers: { ':method': 'CONNECT', ':authority': '127.0.0.1:15003' },
      describe: 'CONNECT 127.0.0.1:15003 at https://a.run.app',
    });
    assert.equal(tunnelRequest('connect', 'https://a', '10.0.0.1:8080').headers[':authority'], '10.0.0.1:8080');
    assert.throws(() => tunnelRequest('connect', 'https://a', 'mesh'), /needs --target as a port or host:port/);
  });

  test('mesh-env: only keys with a value that differs', () => {
    assert.deepEqual(
      meshEnvChanges(
        { CAROOT_ISTIOD: 'old', PROJECT_ID: 'p', PORT_x: '1' },
        { CAROOT_ISTIOD: 'new', PROJECT_ID: 'p', MCON_ADDR: undefined, IMCON_ADDR: '' },
      ),
      { CAROOT_ISTIOD: 'new' },
    );
  });

  test('metrics: Prometheus text with escaped labels', () => {
    const m = new Metrics();
    const count = m.counter('x_total', 'Things.');
    count({ destination: 'https://a' });
    count({ destination: 'https://a' }, 2);
    count({ reason: 'say "hi"\n' });
    m.gauge('y', 'Now.', () => [[{}, 5]]);
    assert.equal(
      m.text(),
      '# HELP x_total Things.\n# TYPE x_total counter\nx_total{destination="https://a"} 3\nx_total{reason="say \\"hi\\"\\n"} 1\n# HELP y Now.\n# TYPE y gauge\ny 5\n',
    );
    assert.equal(m.value('x_total', { destination: 'https://a' }), 3);
  });

  test("the default tunnel target is krun run's mesh (mTLS) port", () => {
    assert.deepEqual(new TargetTable().byName(DEFAULT_TARGET), { name: 'mtls', host: '127.0.0.1', port: 15003 });
  });
});
