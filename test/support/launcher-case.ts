// One `krun run` case: a fresh directory that is both the Pod file tree (MESH_BASE_DIR) and HOME, and the
// environment of a launcher reduced to what the test exercises (no readiness wait, HBONE port or SSH server).
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';

export async function launcherCase(work: string, env: Readonly<Record<string, string | undefined>>) {
  const dir = await mkdtemp(join(work, 'case-'));
  await mkdir(join(dir, 'home'));
  return {
    dir,
    env: {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'),
      MESH_BASE_DIR: dir,
      PORT_http: '-',
      KRUN_HBONE_PORT: '-',
      KRUN_SSH_PORT: '-',
      ...env,
    },
  };
}
