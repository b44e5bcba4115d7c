// Where TARGET is in the operator commands' arguments when it may be left out (a terminal then offers the services):
// after oclif has dropped `--` (exec, ssh), and in front of port specs (port-forward).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { targetAndCommand } from '../../src/lib/operator/flags.ts';
import { targetAndPorts } from '../../src/lib/operator/port-forward.ts';

test('exec and ssh: the arguments before `--` start with TARGET; none there means no TARGET', () => {
  // raw argv as typed, then the positional arguments oclif parsed (flags and `--` gone)
  const cases: [string[], string[], { target: string | undefined; command: string[] }][] = [
    [['debug', '--', 'ls', '-l'], ['debug', 'ls', '-l'], { target: 'debug', command: ['ls', '-l'] }],
    [['--', 'ls', '-l'], ['ls', '-l'], { target: undefined, command: ['ls', '-l'] }],
    [['--region', 'r', '--', 'ls'], ['ls'], { target: undefined, command: ['ls'] }],
    [['debug', 'ls', '--', '-l'], ['debug', 'ls', '-l'], { target: 'debug', command: ['ls', '-l'] }],
    [
      ['debug', '--', 'sh', '-c', 'a -- b'],
      ['debug', 'sh', '-c', 'a -- b'],
      { target: 'debug', command: ['sh', '-c', 'a -- b'] },
    ],
    [['debug'], ['debug'], { target: 'debug', command: [] }],
    [[], [], { target: undefined, command: [] }],
  ];
  for (const [raw, parsed, expected] of cases) assert.deepEqual(targetAndCommand(raw, parsed), expected, raw.join(' '));
});

test('port-forward: a first argument that can only be a port spec means no TARGET; host:port stays a TARGET', () => {
  assert.deepEqual(targetAndPorts(['8080']), { target: undefined, ports: ['8080'] });
  assert.deepEqual(targetAndPorts([':web', '9000:8080']), { target: undefined, ports: [':web', '9000:8080'] });
  assert.deepEqual(targetAndPorts(['web', '8080']), { target: 'web', ports: ['8080'] });
  assert.deepEqual(targetAndPorts(['10.0.0.5:15009', '8080']), { target: '10.0.0.5:15009', ports: ['8080'] });
  assert.deepEqual(targetAndPorts(['[::1]:15009', ':22']), { target: '[::1]:15009', ports: [':22'] });
  assert.deepEqual(targetAndPorts(['https://web-abc-ew.a.run.app', '80']), {
    target: 'https://web-abc-ew.a.run.app',
    ports: ['80'],
  });
  assert.deepEqual(targetAndPorts([]), { target: undefined, ports: [] });
});
