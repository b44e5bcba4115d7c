import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/lib/log/logger.ts';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => {
    text += c.toString();
  });
  return { stream, text: () => text };
}

const now = () => new Date('2026-11-21T10:00:00.000Z');
const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLWJ5dGVz';

describe('logger', () => {
  test('json format: one object per line with severity, time, message and fields', () => {
    const out = capture();
    const log = createLogger({ stream: out.stream, format: 'json', now }).with({ component: 'run' });
    log.info('cluster found', { cluster: 'istio' });
    log.warn('token refresh slow');
    assert.deepEqual(
      out
        .text()
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
      [
        {
          severity: 'INFO',
          time: '2026-11-21T10:00:00.000Z',
          message: 'cluster found',
          component: 'run',
          cluster: 'istio',
        },
        { severity: 'WARNING', time: '2026-11-21T10:00:00.000Z', message: 'token refresh slow', component: 'run' },
      ],
    );
  });

  test('human format: the message, then key=value pairs; level prefix only above info', () => {
    const out = capture();
    const log = createLogger({ stream: out.stream, format: 'human', now });
    log.info('listening', { port: 15009, addr: '127.0.0.1' });
    log.error('failed', { reason: 'two words' });
    assert.equal(out.text(), 'listening port=15009 addr=127.0.0.1\nerror: failed reason="two words"\n');
  });

  test('debug lines appear only at debug level', () => {
    const out = capture();
    createLogger({ stream: out.stream, format: 'human' }).debug('hidden');
    createLogger({ stream: out.stream, format: 'human', level: 'debug' }).debug('shown');
    assert.equal(out.text(), 'debug: shown\n');
  });

  test('tokens are redacted from fields by name and from any string by shape', () => {
    const out = capture();
    const log = createLogger({ stream: out.stream, format: 'json', now });
    log.info(`got ${jwt}`, {
      token: 'opaque-secret-value',
      headers: { authorization: 'Bearer abc.def', accept: 'application/json' },
      url: 'https://x/?access_token=ya29.a0AfB_secret',
      key: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----',
    });
    const line = JSON.parse(out.text());
    assert.equal(line.message, 'got [REDACTED]');
    assert.equal(line.token, '[REDACTED]');
    assert.deepEqual(line.headers, { authorization: '[REDACTED]', accept: 'application/json' });
    assert.equal(line.url, 'https://x/?access_token=[REDACTED]');
    assert.equal(line.key, '[REDACTED]');
    assert.doesNotMatch(out.text(), /secret|abc\.def|MIIB|eyJ/);
  });
});
