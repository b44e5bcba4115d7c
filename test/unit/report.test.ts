import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { report } from '../../src/lib/cli/report.ts';
import {
  CancelledError,
  ExitStatusError,
  KrunError,
  NonInteractiveError,
  TransportError,
  UsageError,
} from '../../src/lib/errors.ts';

describe('report', () => {
  test('a KrunError prints its message and Try: steps, exit 1', () => {
    const err = new KrunError("can't read the mesh-env ConfigMap", { hints: ['krun setup-namespace demo'] });
    assert.deepEqual(report(err, 'krun'), {
      text: "error: can't read the mesh-env ConfigMap\n\nTry:\n  krun setup-namespace demo\n",
      exitCode: 1,
    });
  });

  test('usage, non-interactive, transport and cancellation map to 2, 2, 255 and 130', () => {
    assert.equal(report(new UsageError('x'), 'krun').exitCode, 2);
    assert.equal(report(new NonInteractiveError('x'), 'krun').exitCode, 2);
    assert.equal(report(new TransportError('x'), 'krun').exitCode, 255);
    assert.deepEqual(report(new CancelledError(), 'krun'), { text: '', exitCode: 130 });
  });

  test('a remote exit status passes through silently', () => {
    assert.deepEqual(report(new ExitStatusError(42), 'krun'), { text: '', exitCode: 42 });
  });

  test("oclif parse errors are usage errors pointing at the command's help, whatever exit oclif gave them", () => {
    const parseError = Object.assign(new Error('Expected --output=x to be one of: json\nSee more help with --help'), {
      oclif: { exit: 1 },
      parse: {},
    });
    assert.deepEqual(report(parseError, 'krun', 'version'), {
      text: 'error: Expected --output=x to be one of: json\n\nTry:\n  krun version --help\n',
      exitCode: 2,
    });
  });

  test("oclif's silent exit keeps its status and prints nothing", () => {
    const exit = Object.assign(new Error('EEXIT: 3'), { code: 'EEXIT', oclif: { exit: 3 } });
    assert.deepEqual(report(exit, 'krun'), { text: '', exitCode: 3 });
  });

  test('system errors get a hint, unknown values still print', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    assert.match(report(refused, 'krun').text, /Try:\n {2}check the address and port/);
    assert.deepEqual(report('boom', 'krun'), { text: 'error: boom\n', exitCode: 1 });
  });

  test('tokens inside error messages never reach the terminal', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const { text } = report(new KrunError(`401 for Authorization: Bearer ${jwt}`), 'krun');
    assert.equal(text, 'error: 401 for Authorization: Bearer [REDACTED]\n');
  });
});
