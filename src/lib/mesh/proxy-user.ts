// With capture (sidecar mode, Traffic Director with Envoy) the proxy runs as Istio's proxy user, UID/GID 1337: the
// capture lets that user's traffic through, and nothing else of the workload's. Its directories are its own, with
// tight modes; what it only reads stays root's. Before starting it, krun checks that the user can reach what it
// needs: pilot-agent's or Envoy's own error for an unreadable path is obscure.
import { lchown, mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.ts';
import type { Owner } from '../fs/atomic-file.ts';
import { PROXY_UID } from './injector.ts';

export const PROXY_OWNER: Owner = { uid: PROXY_UID, gid: PROXY_UID };

/** Creates each directory (relative to base) with its mode, owned by owner when given (taking over an old one). */
export async function ownedDirs(base: string, dirs: readonly [string, number][], owner: Owner | undefined) {
  for (const [dir, mode] of dirs) {
    const path = join(base, dir);
    await mkdir(path, { recursive: true, mode });
    // lchown: a symlink left there (by the proxy user, say) must not hand its target to that user.
    if (owner) await lchown(path, owner.uid, owner.gid);
  }
}

/** Whether a process of owner may search (x) or read (r) path by its mode bits alone. */
function allowed(s: { mode: number; uid: number; gid: number }, owner: Owner, bit: 1 | 4): boolean {
  if (s.uid === owner.uid) return (s.mode & (bit << 6)) !== 0;
  if (s.gid === owner.gid) return (s.mode & (bit << 3)) !== 0;
  return (s.mode & bit) !== 0;
}

/** Throws a UsageError naming the first directory (or the file) of path that owner can't get through. */
export async function assertReachable(path: string, owner: Owner, what: string, need: 'read' | 'execute') {
  const absolute = resolve(path);
  const chain: string[] = [];
  for (let d = dirname(absolute); ; d = dirname(d)) {
    chain.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const dir of chain) {
    if (!allowed(await stat(dir), owner, 1)) {
      throw new UsageError(
        `${what} ${absolute} is out of reach of the proxy user (UID ${owner.uid}): ${dir} may not be entered`,
        {
          hints: [
            `chmod o+x ${dir}`,
            `or move it where UID ${owner.uid} may enter`,
            'ISTIO_META_INTERCEPTION_MODE=NONE runs the proxy as the current user',
          ],
        },
      );
    }
  }
  if (!allowed(await stat(absolute), owner, need === 'read' ? 4 : 1)) {
    throw new UsageError(
      `${what} ${absolute} may not be ${need === 'read' ? 'read' : 'run'} by the proxy user (UID ${owner.uid})`,
      {
        hints: [`chmod o+${need === 'read' ? 'r' : 'rx'} ${absolute}`],
      },
    );
  }
}
