import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { createContext, isInteractive, type Streams, signalController, systemClock } from '../../src/lib/context.ts';
import { CancelledError } from '../../src/lib/errors.ts';

function streams(inTty: boolean, errTty: boolean): Streams {
  return {
    in: Object.assign(new PassThrough(), { isTTY: inTty }),
    out: new PassThrough(),
    err: Object.assign(new PassThrough(), { isTTY: errTty }),
  };
}

describe('isInteractive', () => {
  test('needs a terminal on stdin and stderr, and no CI', () => {
    assert.equal(isInteractive(streams(true, true), {}), true);
    assert.equal(isInteractive(streams(false, true), {}), false);
    assert.equal(isInteractive(streams(true, false), {}), false);
    assert.equal(isInteractive(streams(true, true), { CI: 'true' }), false);
    assert.equal(isInteractive(streams(true, true), { CI: 'false' }), true);
  });
});

describe('signalController', () => {
  test('the first signal aborts with CancelledError; a second exits 130 at once', () => {
    const proc = Object.assign(new EventEmitter(), { exits: [] as number[] });
    const fake = {
      once: proc.once.bind(proc),
      removeListener: proc.removeListener.bind(proc),
      exit: (code?: number) => {
        proc.exits.push(code ?? 0);
        return undefined as never;
      },
    } as unknown as Parameters<typeof signalController>[0];
    const { controller, dispose } = signalController(fake);
    proc.emit('SIGTERM', 'SIGTERM');
    assert.ok(controller.signal.aborted);
    assert.ok(controller.signal.reason instanceof CancelledError);
    assert.equal(controller.signal.reason.message, 'interrupted by SIGTERM');
    assert.deepEqual(proc.exits, []);
    proc.emit('SIGTERM', 'SIGTERM');
    assert.deepEqual(proc.exits, [130]);
    dispose();
    assert.equal(proc.listenerCount('SIGINT') + proc.listenerCount('SIGTERM'), 0);
  });
});

describe('createContext', () => {
  test('logs JSON lines without a terminal and human lines on one', () => {
    const signal = new AbortController().signal;
    const plain = streams(false, false);
    let text = '';
    plain.err.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const clock = { ...systemClock, now: () => new Date('2026-01-01T00:00:00Z') };
    createContext({ streams: plain, env: {}, cwd: '/', signal, clock }).log.info('hello');
    assert.equal(text, '{"severity":"INFO","time":"2026-01-01T00:00:00.000Z","message":"hello"}\n');
    const tty = streams(true, true);
    let human = '';
    tty.err.on('data', (c: Buffer) => {
      human += c.toString();
    });
    const ctx = createContext({ streams: tty, env: {}, cwd: '/', signal, clock });
    ctx.log.info('hello');
    assert.equal(human, 'hello\n');
    assert.equal(ctx.interactive, true);
  });
});
