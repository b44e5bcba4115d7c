import assert from 'node:assert/strict';

/** The messages appear in krun's JSON log (stderr) in this order. */
export function assertLogOrder(stderr: string, messages: readonly string[]): void {
  const at = messages.map((m) => stderr.indexOf(`"message":"${m}"`));
  assert.ok(
    at.every((i, k) => i >= 0 && (k === 0 || i > (at[k - 1] ?? 0))),
    `${messages.join(' < ')}: ${at.join(',')}\n${stderr}`,
  );
}
