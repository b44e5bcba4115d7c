// node --test global setup: one real control plane for the whole run, handed to test files through a state file
// named in KRUN_TEST_CONTROL_PLANE. Teardown stops every process it started, whatever the tests did.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ControlPlane, startControlPlane } from './control-plane/index.ts';

export const STATE_ENV = 'KRUN_TEST_CONTROL_PLANE';

let plane: ControlPlane | undefined;

const log = (line: string): void => {
  process.stderr.write(`[control-plane] ${line}\n`);
};

export async function globalSetup(): Promise<void> {
  plane = await startControlPlane(log);
  const { stop: _stop, ...info } = plane;
  const file = join(plane.dir, 'state.json');
  writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
  process.env[STATE_ENV] = file;
}

export async function globalTeardown(): Promise<void> {
  await plane?.stop();
}
