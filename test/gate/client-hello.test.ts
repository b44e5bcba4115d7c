// The gate's ClientHello parser: real and built ClientHellos, fragmented over records and TCP segments, and what
// must be refused (not TLS, SSLv2, HTTP, malformed, oversized, no SNI). Then a deterministic fuzz run: random and
// mutated inputs never make it throw, and it always decides within its byte bound.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type HelloResult,
  MAX_BUFFERED_BYTES,
  MAX_HELLO_BYTES,
  parseClientHello,
} from '../../src/lib/gate/client-hello.ts';
import { readClientHello } from '../../src/lib/gate/read-hello.ts';
import { captureClientHello, extension, handshakeOf, helloMessage, prng, records } from './hello.ts';

const SNI = 'outbound_.8080_._.fortio.apps.svc.cluster.local';

function rejected(result: HelloResult): { reason: string; detail: string } {
  assert.equal(result.status, 'rejected', JSON.stringify(result));
  return result as { reason: string; detail: string };
}

describe('ClientHello parser', () => {
  test("Node's own ClientHello: SNI and ALPN exactly", async () => {
    const hello = await captureClientHello({ servername: SNI, alpn: ['istio', 'h2'] });
    assert.deepEqual(parseClientHello(hello), { status: 'ok', serverName: SNI, alpn: ['istio', 'h2'] });
  });

  test('a ClientHello fragmented over several TLS records', async () => {
    const handshake = handshakeOf(await captureClientHello({ servername: SNI, alpn: ['h2'] }));
    for (const sizes of [[8], [3, 100], [40], [handshake.length - 1]]) {
      const bytes = records(handshake, sizes);
      assert.ok(bytes.length > handshake.length + 5, 'more than one record');
      assert.deepEqual(parseClientHello(bytes), { status: 'ok', serverName: SNI, alpn: ['h2'] }, `sizes ${sizes}`);
    }
  });

  test('every prefix of a fragmented ClientHello needs more; the whole decides', () => {
    const bytes = records(helloMessage({ sni: 'a.b.svc.cluster.local', alpn: ['h2'] }), [7, 30]);
    for (let n = 0; n < bytes.length; n++)
      assert.deepEqual(parseClientHello(bytes.subarray(0, n)), { status: 'need-more' });
    assert.deepEqual(parseClientHello(bytes), { status: 'ok', serverName: 'a.b.svc.cluster.local', alpn: ['h2'] });
    // Bytes after the ClientHello (a ChangeCipherSpec, early data) change nothing.
    const after = Buffer.concat([bytes, Buffer.from([0x14, 3, 3, 0, 1, 1])]);
    assert.equal(parseClientHello(after).status, 'ok');
  });

  test('a ClientHello sent one byte per TCP segment is read from the socket', async () => {
    const bytes = records(helloMessage({ sni: SNI, alpn: ['istio'] }), [50]);
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', noDelay: true });
    const [socket] = await accepted;
    const outcome = readClientHello(socket, 20_000);
    for (const byte of bytes) {
      client.write(Buffer.from([byte]));
      await sleep(1);
    }
    const result = await outcome;
    assert.equal(result.ok, true);
    assert.ok(result.ok);
    assert.equal(result.serverName, SNI);
    assert.deepEqual(result.alpn, ['istio']);
    assert.deepEqual(result.bytes, bytes, 'every byte kept for the tunnel');
    client.destroy();
    socket.destroy();
    server.close();
  });

  test('no SNI: a client connecting to an IP address, or no extensions at all', async () => {
    const byIp = await captureClientHello({});
    assert.equal(rejected(parseClientHello(byIp)).reason, 'no-sni');
    assert.deepEqual(parseClientHello(records(helloMessage({ noExtensions: true }))), {
      status: 'rejected',
      reason: 'no-sni',
      detail: 'the ClientHello has no extensions',
    });
  });

  test('not TLS: HTTP text, SSLv2, another record version', () => {
    assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), {
      status: 'rejected',
      reason: 'not-tls',
      detail: 'plain text (starts with "GET / HTTP/1.1..")',
    });
    // SSLv2-compatible ClientHello: 2-byte length with the high bit, msg type 1, version 3.1.
    const sslv2 = Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]);
    assert.deepEqual(parseClientHello(sslv2), {
      status: 'rejected',
      reason: 'not-tls',
      detail: 'an SSLv2-format ClientHello (no SNI possible)',
    });
    assert.equal(rejected(parseClientHello(Buffer.from([0x16, 0x02]))).reason, 'not-tls');
    assert.equal(rejected(parseClientHello(Buffer.from([0x00]))).reason, 'not-tls');
  });

  test('oversized: a huge record, a huge ClientHello, too many records', () => {
    assert.deepEqual(parseClientHello(Buffer.from([0x16, 3, 1, 0x48, 0x00])), {
      status: 'rejected',
      reason: 'oversized',
      detail: `a record of 18432 bytes (limit ${MAX_HELLO_BYTES})`,
    });
    const big = Buffer.from([0x16, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00]);
    assert.deepEqual(parseClientHello(big), {
      status: 'rejected',
      reason: 'oversized',
      detail: `a ClientHello of 65540 bytes (limit ${MAX_HELLO_BYTES})`,
    });
    const crumbs = records(helloMessage({ sni: 'a.b.svc', padding: 300 }), [1]);
    assert.deepEqual(parseClientHello(crumbs), {
      status: 'rejected',
      reason: 'oversized',
      detail: 'the ClientHello spans more than 256 records',
    });
    // The largest acceptable ClientHello still parses.
    const padded = helloMessage({ sni: 'a.b.svc.cluster.local', padding: 1 });
    const max = helloMessage({ sni: 'a.b.svc.cluster.local', padding: 1 + MAX_HELLO_BYTES - padded.length });
    assert.equal(max.length, MAX_HELLO_BYTES);
    assert.equal(parseClientHello(records(max, [4000])).status, 'ok');
  });

  test('malformed: lengths that lie, a duplicate extension, a bad name, another handshake first', () => {
    const good = helloMessage({ sni: 'a.b.svc.cluster.local' });
    const shortExtensions = Buffer.from(good);
    shortExtensions.writeUInt16BE(
      shortExtensions.readUInt16BE(4 + 2 + 32 + 1 + 32 + 2 + 4 + 2) + 1,
      4 + 2 + 32 + 1 + 32 + 2 + 4 + 2,
    );
    assert.equal(rejected(parseClientHello(records(shortExtensions))).reason, 'malformed');
    const twice = helloMessage({ sni: 'a.b.svc', padding: 1 });
    const dup = Buffer.from(twice);
    // Turn the padding extension (21) into a second server_name (0).
    dup.writeUInt16BE(0, dup.length - 5);
    assert.equal(rejected(parseClientHello(records(dup))).reason, 'malformed');
    assert.deepEqual(parseClientHello(records(helloMessage({ sni: 'x.svc.' }))), {
      status: 'rejected',
      reason: 'malformed',
      detail: 'server name "x.svc." is not a DNS host name',
    });
    assert.equal(rejected(parseClientHello(records(helloMessage({ sni: 'a\u0000b' })))).reason, 'malformed');
    const serverHello = Buffer.from(good);
    serverHello[0] = 2;
    assert.deepEqual(parseClientHello(records(serverHello)), {
      status: 'rejected',
      reason: 'malformed',
      detail: 'handshake message type 2 where a ClientHello (1) must come first',
    });
    const alert = Buffer.concat([records(good.subarray(0, 10)), Buffer.from([0x15, 3, 1, 0, 2, 2, 40])]);
    assert.equal(rejected(parseClientHello(alert)).reason, 'malformed');
    assert.equal(
      rejected(parseClientHello(records(helloMessage({ sni: 'a.b', sessionIdLength: 33 })))).reason,
      'malformed',
    );
    assert.equal(extension(0, Buffer.alloc(0)).length, 4);
  });
});

describe('ClientHello parser fuzz', () => {
  test('100,000 random and mutated ClientHellos: typed results only, always decided within the byte bound', async () => {
    const random = prng(0x6a7e);
    const int = (n: number) => Math.floor(random() * n);
    const bases = [
      await captureClientHello({ servername: SNI, alpn: ['istio', 'h2'] }),
      await captureClientHello({ servername: 'fortio.apps.svc.cluster.local' }),
      await captureClientHello({}),
      records(helloMessage({ sni: SNI, alpn: ['h2', 'http/1.1'], padding: 300 }), [100]),
      records(helloMessage({ sni: 'a.b.svc', noExtensions: false, sessionIdLength: 0 })),
    ].map(handshakeOf);
    const counts: Record<string, number> = {};
    const check = (input: Buffer) => {
      let result: HelloResult;
      try {
        result = parseClientHello(input);
      } catch (err) {
        assert.fail(`threw ${(err as Error).stack} on ${input.toString('hex')}`);
      }
      const key = result.status === 'rejected' ? result.reason : result.status;
      counts[key] = (counts[key] ?? 0) + 1;
      if (result.status === 'need-more') {
        assert.ok(input.length < MAX_BUFFERED_BYTES, `undecided after ${input.length} bytes: ${input.toString('hex')}`);
      }
      if (result.status === 'ok') assert.match(result.serverName, /^[a-z0-9_.-]{1,253}$/);
    };
    for (let i = 0; i < 40_000; i++) {
      // Random bytes, half of them behind a plausible record header.
      const body = Buffer.from(Array.from({ length: int(600) }, () => int(256)));
      check(i % 2 === 0 ? body : Buffer.concat([Buffer.from([0x16, 3, int(5), int(256), int(256)]), body]));
    }
    for (let i = 0; i < 60_000; i++) {
      const base = Buffer.from(bases[i % bases.length] as Buffer);
      for (let m = 1 + int(4); m > 0; m--) {
        const at = int(base.length);
        switch (int(4)) {
          case 0:
            base[at] = (base[at] as number) ^ (1 << int(8));
            break;
          case 1:
            base[at] = int(256);
            break;
          case 2:
            base.writeUInt16BE(int(65536), Math.min(at, base.length - 2));
            break;
          default:
            base[at] = [0, 1, 0xff, 0x7f, 0x80][int(5)] as number;
        }
      }
      const sizes = [1 + int(400), 1 + int(2000)];
      let input = records(base, sizes);
      if (int(4) === 0) input = input.subarray(0, int(input.length + 1));
      if (int(8) === 0) input = Buffer.concat([input, Buffer.from(Array.from({ length: int(64) }, () => int(256)))]);
      check(input);
    }
    // Inputs at the bound: many maximal records never leave the parser undecided.
    for (let i = 0; i < 200; i++) {
      const handshake = Buffer.concat([Buffer.from([1, 0, 0x3f, 0xfc]), Buffer.alloc(MAX_HELLO_BYTES, int(256))]);
      check(records(handshake, [1 + int(16_384)]).subarray(0, MAX_BUFFERED_BYTES));
    }
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    assert.ok(total >= 100_000, `${total} inputs`);
    for (const kind of ['ok', 'need-more', 'not-tls', 'malformed', 'no-sni', 'oversized']) {
      assert.ok((counts[kind] ?? 0) > 0, `no input ended as ${kind}: ${JSON.stringify(counts)}`);
    }
  });
});
