// Pure pieces: the allow-list, routing, forwarding headers and the client's URL and -L syntax.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../src/lib/errors.ts';
import { endToEndHeaders, proxyRequestHeaders } from '../../src/lib/hbone/forwarded.ts';
import { routeRequest } from '../../src/lib/hbone/routes.ts';
import { TargetSpecError, TargetTable } from '../../src/lib/hbone/targets.ts';
import { parseForward, parseTunnelUrl, tunnelPath } from '../../src/lib/hbone/url.ts';

describe('tunnel allow-list', () => {
  const table = new TargetTable({
    appPort: 8080,
    named: { grpc: '8079', db: '10.0.0.5:5432' },
    selfHosts: ['10.1.2.3'],
  });

  test('22 is the SSH server on 127.0.0.1:15022 and 15003 the mesh inbound port', () => {
    assert.deepEqual(table.byName('22'), { name: 'ssh', host: '127.0.0.1', port: 15022 });
    assert.deepEqual(table.byName('15003'), { name: 'mtls', host: '127.0.0.1', port: 15003 });
  });

  test('a bare PORT_<name> port means 127.0.0.1:port; host:port is kept', () => {
    assert.deepEqual(table.byName('grpc'), { name: 'grpc', host: '127.0.0.1', port: 8079 });
    assert.deepEqual(table.byName('db'), { name: 'db', host: '10.0.0.5', port: 5432 });
  });

  test('CONNECT reaches exact targets and local ports by loopback or self address, nothing else', () => {
    assert.equal(table.byAuthority('10.0.0.5:5432')?.name, 'db');
    assert.equal(table.byAuthority('127.0.0.1:8080')?.name, 'app');
    assert.equal(table.byAuthority('10.1.2.3:8079')?.name, 'grpc');
    assert.equal(table.byAuthority('10.0.0.5:22'), undefined);
    assert.equal(table.byAuthority('169.254.169.254:80'), undefined);
    assert.equal(table.byAuthority('127.0.0.1:9999'), undefined);
    assert.equal(table.byName('9999'), undefined);
  });

  test('an invalid PORT_<name> value is refused when the table is built', () => {
    assert.throws(() => new TargetTable({ named: { bad: 'not a port' } }), TargetSpecError);
  });
});

describe('routing', () => {
  const table = new TargetTable({ named: { web: '9000' } });

  test('/_hbone/<target> ignores the query string; /_hbone/ alone is the probe; other paths are proxied', () => {
    assert.equal(routeRequest(table, 'POST', '/_hbone/web?x=1', undefined).kind, 'tunnel');
    assert.equal(routeRequest(table, 'POST', '/_hbone/22/', undefined).kind, 'tunnel');
    assert.deepEqual(routeRequest(table, 'POST', '/_hbone/nope', undefined), {
      kind: 'unknown-target',
      requested: 'nope',
    });
    assert.equal(routeRequest(table, 'GET', '/_hbone/', undefined).kind, 'probe');
    assert.equal(routeRequest(table, 'GET', '/_hbonex', undefined).kind, 'proxy');
    assert.equal(routeRequest(table, 'GET', '/app/_hbone/22', undefined).kind, 'proxy');
  });

  test('CONNECT routes by authority and never falls through to the proxy', () => {
    assert.equal(routeRequest(table, 'CONNECT', undefined, '127.0.0.1:9000').kind, 'tunnel');
    assert.equal(routeRequest(table, 'CONNECT', undefined, 'example.com:443').kind, 'unknown-target');
  });
});

describe('forwarding headers', () => {
  test('hop-by-hop headers, those named by Connection, and x-forwarded-client-cert are dropped', () => {
    const out = endToEndHeaders({
      connection: 'close, x-secret',
      'x-secret': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'x-forwarded-client-cert': 'forged',
      accept: 'text/plain',
    });
    assert.deepEqual(out, { accept: 'text/plain' });
  });

  test('IPv6 peers are bracketed and quoted in Forwarded; te: trailers survives', () => {
    const out = proxyRequestHeaders({ te: 'trailers', host: 'a.example' }, { remoteAddress: '::1', proto: 'https' });
    assert.equal(out.forwarded, 'for="[::1]";host=a.example;proto=https');
    assert.equal(out['x-forwarded-for'], '::1');
    assert.equal(out.te, 'trailers');
  });
});

describe('client syntax', () => {
  test('tunnel URLs and the HOST:PORT shorthand', () => {
    const full = parseTunnelUrl('https://svc-abc-uc.a.run.app/_hbone/22');
    assert.equal(full.origin.origin, 'https://svc-abc-uc.a.run.app');
    assert.equal(full.target, '22');
    assert.deepEqual(parseTunnelUrl('svc.example.com:22').target, '22');
    assert.equal(parseTunnelUrl('http://127.0.0.1:15009').target, undefined);
    assert.throws(() => parseTunnelUrl('https://svc/other'), UsageError);
    assert.throws(() => parseTunnelUrl('ftp://svc/_hbone/22'), UsageError);
    assert.equal(tunnelPath('10.0.0.5:5432'), '/_hbone/10.0.0.5:5432');
  });

  test('-L [addr:]localport:target, with host:port targets as in ssh', () => {
    assert.deepEqual(parseForward('2222:22'), { bindHost: '127.0.0.1', localPort: 2222, target: '22' });
    assert.deepEqual(parseForward('0.0.0.0:8080:http'), { bindHost: '0.0.0.0', localPort: 8080, target: 'http' });
    assert.deepEqual(parseForward('5432:db.internal:5432'), {
      bindHost: '127.0.0.1',
      localPort: 5432,
      target: 'db.internal:5432',
    });
    assert.throws(() => parseForward('2222'), UsageError);
    assert.throws(() => parseForward('ssh:22'), UsageError);
  });
});
