// What krun hands the node-side installer (templates/runtime-installer.sh): the whole per-node decision as
// environment variables, so the pod needs no Kubernetes API access to find anything out.

import { readShipped, shippedPath } from '../fs/shipped.ts';
import { crioDropIn, type RuntimeDefinition, tomlBody } from './definitions.ts';
import type { NodePlan } from './plan.ts';

/** The shipped installer script (templates/ sits beside src/ and dist/). */
const INSTALLER = 'templates/runtime-installer.sh';
export const INSTALLER_SCRIPT = shippedPath(INSTALLER);

export function installerScript(): Promise<string> {
  return readShipped(INSTALLER);
}

export type InstallerAction = 'install' | 'revert';

/** The installer's environment for one node. `plan.method` must be set (a supported node). */
export function installerEnv(def: RuntimeDefinition, plan: NodePlan): Record<string, string> {
  if (!plan.method || !plan.unit) throw new Error(`node ${plan.node} has no install method`);
  return {
    KRUN_RUNTIME: def.name,
    KRUN_HANDLER: def.handler,
    KRUN_METHOD: plan.method,
    KRUN_UNIT: plan.unit,
    ...(plan.config ? { KRUN_CONFIG: plan.config } : {}),
    ...(plan.dropIn ? { KRUN_DROPIN: plan.dropIn } : {}),
    ...(plan.method === 'crio-dropin'
      ? { KRUN_CRIO_DROPIN: crioDropIn(def) }
      : {
          KRUN_RUNTIME_TABLE: tomlBody(def.containerd, '  ').trimEnd(),
          KRUN_CONFIG_VERSION: plan.method === 'containerd-config' ? '2' : '3',
        }),
    KRUN_ARTIFACTS: def.artifacts.dir,
    KRUN_INSTALL: def.artifacts.install.map((i) => `${i.from}:${i.to}`).join(' '),
  };
}
