// kubectl-style durations for --timeout.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDuration, parseDuration } from '../../src/lib/cli/duration.ts';
import { UsageError } from '../../src/lib/errors.ts';

describe('durations', () => {
  test('parses units, combinations and bare seconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('45'), 45_000);
  });

  test('rejects anything else as a usage error', () => {
    for (const bad of ['', 'soon', '5 m', '5d', '1m-3s']) {
      assert.throws(() => parseDuration(bad), UsageError, bad);
    }
  });

  test('says a duration back in its shortest form', () => {
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(1000), '1s');
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(3_600_000), '1h');
  });
});
