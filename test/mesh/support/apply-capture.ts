// Run by capture.test.ts as root inside the test's network namespace: resolves the run settings from the
// environment as `krun run` does and applies sidecar mode's capture with captureOutbound, the call startMesh makes.
// Prints the rules it applied (JSON: ipv4, ipv6).
import { hostname } from 'node:os';
import { createLogger } from '../../../src/lib/log/logger.ts';
import { captureOutbound } from '../../../src/lib/mesh/capture.ts';
import { resolveConfig } from '../../../src/lib/run/config.ts';

const resolvConf = process.argv[2];
if (!resolvConf) throw new Error('usage: apply-capture.ts RESOLV_CONF');
const config = resolveConfig({
  flags: {},
  env: process.env,
  meshEnv: {},
  hostname: hostname(),
  isRoot: true,
  cwd: process.cwd(),
});
const log = createLogger({ stream: process.stderr, format: 'json', level: 'info' });
process.stdout.write(JSON.stringify(await captureOutbound(config, resolvConf, process.env, log)));
