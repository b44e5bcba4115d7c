// The operator commands' world: the Google Cloud emulator (Admin API, metadata server with the operator's
// identity, the Cloud Run front end), real `krun run` instances behind the front end as Cloud Run services, and an
// operator home directory with an SSH key, running the built CLI without a terminal.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { type KrunSsh, keygen, startKrunSsh } from '../ssh/support.ts';
import { type CliOptions, type CliResult, krun } from '../support/cli.ts';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';

export const PROJECT = 'ops-proj';
export const REGION = 'europe-west1';
export const OPERATOR = '555566667777-compute@developer.gserviceaccount.com';

export interface World {
  readonly gcp: GcpEmulator;
  readonly root: string;
  /** Runs before the emulator stops (its front end holds connections to the instances). */
  cleanup(fn: () => Promise<void>): void;
  /** A fresh directory under the run's root. */
  dir(name: string): Promise<string>;
}

/** The emulator with the operator as the metadata server's identity, allowed to view the project's services. */
export async function operatorGcp(): Promise<GcpEmulator> {
  const gcp = await startGcpEmulator({
    projectId: PROJECT,
    projectNumber: '555566667777',
    region: REGION,
    serviceAccount: OPERATOR,
  });
  gcp.state.grant(`projects/${PROJECT}`, 'roles/run.viewer', OPERATOR);
  return gcp;
}

/** The operator's environment: HOME, the emulator, gcloud's project and region (no CI: krun() adds it). */
export function operatorEnv(gcp: GcpEmulator, home: string): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    HOME: home,
    ...gcp.env(),
    CLOUDSDK_CORE_PROJECT: PROJECT,
    CLOUDSDK_RUN_REGION: REGION,
  };
}

export async function world(name: string): Promise<World> {
  const gcp = await operatorGcp();
  const root = await mkdtemp(join(tmpdir(), `krun-${name}-`));
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
    await gcp.stop();
    if (!process.env.KRUN_KEEP_TEST_DIRS) await rm(root, { recursive: true, force: true });
  });
  let n = 0;
  return {
    gcp,
    root,
    cleanup: (fn) => cleanups.push(fn),
    dir: async (label) => {
      const d = join(root, `${++n}-${label}`);
      await mkdir(d, { recursive: true });
      return d;
    },
  };
}

export interface Operator {
  readonly home: string;
  readonly pub: string;
  readonly keyPath: string;
  readonly env: Record<string, string | undefined>;
  run(args: readonly string[], options?: Omit<CliOptions, 'cleanEnv'>): Promise<CliResult>;
}

/** A person at a machine without a terminal: HOME with ~/.ssh/id_ed25519, no agent, gcloud's project and region. */
export async function operator(w: World, label = 'operator'): Promise<Operator> {
  const home = await w.dir(label);
  await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  const key = await keygen(join(home, '.ssh'), 'id_ed25519');
  const env = operatorEnv(w.gcp, home);
  return {
    home,
    pub: key.pub,
    keyPath: key.path,
    env,
    run: (args, options = {}) => krun(args, { ...options, cleanEnv: { ...env, ...options.env } }),
  };
}

/** `krun run` (standalone) deployed as Cloud Run service `name` (HTTP/2 end to end); the operator may invoke it. */
export async function deploy(
  w: World,
  name: string,
  env: Record<string, string | undefined>,
  options: { invoker?: string | undefined; command?: readonly string[] } = {},
): Promise<{ instance: KrunSsh; url: string; dir: string }> {
  const dir = await w.dir(name);
  const instance = await startKrunSsh(dir, env, options.command ?? []);
  w.cleanup(() => stopInstance(instance));
  const service = w.gcp.state.addRunService({ name, backendPort: instance.hbonePort, http2: true });
  if (options.invoker !== undefined) {
    w.gcp.state.grant(w.gcp.state.runServiceName(service), 'roles/run.invoker', options.invoker);
  }
  return { instance, url: w.gcp.state.runServiceUrls(service)[0] ?? '', dir };
}

/** Stops a krun instance with SIGTERM, as Cloud Run does; one that does not exit within 10 s fails the test. */
export async function stopInstance(instance: KrunSsh): Promise<void> {
  if (instance.krun.child.exitCode !== null || instance.krun.child.signalCode !== null) return;
  instance.krun.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      instance.krun.child.kill('SIGKILL');
      reject(new Error(`krun run ignored SIGTERM for 10 s\n--- its log:\n${instance.krun.stderr()}`));
    }, 10_000);
  });
  try {
    await Promise.race([instance.krun.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}
