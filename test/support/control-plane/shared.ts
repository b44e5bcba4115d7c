// How a test file gets the control plane: the one the global setup started for this run, or, when the file is run
// on its own (`node --test test/integration/x.test.ts`), one started for this file and stopped when it ends.
import { readFileSync } from 'node:fs';
import { after } from 'node:test';
import { type ControlPlaneInfo, startControlPlane } from './index.ts';

let mine: Promise<ControlPlaneInfo> | undefined;

export function controlPlane(): Promise<ControlPlaneInfo> {
  const file = process.env.KRUN_TEST_CONTROL_PLANE;
  if (file) return Promise.resolve(JSON.parse(readFileSync(file, 'utf8')) as ControlPlaneInfo);
  mine ??= startControlPlane((line) => process.stderr.write(`[control-plane] ${line}\n`)).then((plane) => {
    after(() => plane.stop());
    return plane;
  });
  return mine;
}
