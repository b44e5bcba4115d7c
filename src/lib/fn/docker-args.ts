// The `docker run` command lines kustomize and kpt build, turned into an FnSpec. Only the flags those tools pass
// (and a few harmless neighbours) are accepted; anything else fails naming the flag instead of being ignored.
import type { Env } from '../context.ts';
import { FnRuntimeError } from './errors.ts';
import { type FnSpec, NOBODY, parseEnv, parseMount, parseNetwork, parsePull, parseUser } from './spec.ts';

/** Flags that take a value, by every name docker accepts for them. */
const VALUE_FLAGS: Readonly<Record<string, string>> = {
  '-a': 'attach',
  '--attach': 'attach',
  '--network': 'network',
  '--net': 'network',
  '-u': 'user',
  '--user': 'user',
  '--security-opt': 'security-opt',
  '--mount': 'mount',
  '-e': 'env',
  '--env': 'env',
  '--pull': 'pull',
  '--entrypoint': 'entrypoint',
  '-w': 'workdir',
  '--workdir': 'workdir',
  '--name': 'name',
};

const BOOLEAN_FLAGS: Readonly<Record<string, string>> = {
  '--rm': 'rm',
  '-i': 'interactive',
  '--interactive': 'interactive',
};

export const SUPPORTED_RUN_FLAGS = [...Object.keys(BOOLEAN_FLAGS), ...Object.keys(VALUE_FLAGS)];

/** `args` is what follows `docker run`. */
export function parseDockerRun(args: readonly string[], env: Env, cwd: string): FnSpec {
  const values: Record<string, string[]> = {};
  const booleans = new Set<string>();
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const valued = VALUE_FLAGS[flag];
    const boolean = BOOLEAN_FLAGS[flag];
    if (valued) {
      const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new FnRuntimeError(`docker run: flag ${flag} needs a value`);
      values[valued] = [...(values[valued] ?? []), value];
    } else if (boolean && eq < 0) {
      booleans.add(boolean);
    } else {
      throw new FnRuntimeError(`docker run: unsupported flag ${flag} (krun runs the function as a Kubernetes Pod)`, {
        hints: [`supported: ${SUPPORTED_RUN_FLAGS.join(' ')}`],
      });
    }
  }
  const image = args[i];
  if (!image) throw new FnRuntimeError('docker run: no image given', { hints: ['docker run [FLAGS] IMAGE [ARG…]'] });
  for (const stream of values.attach ?? []) {
    if (!['stdin', 'stdout', 'stderr'].includes(stream.toLowerCase()))
      throw new FnRuntimeError(`docker run: -a ${stream}: expected STDIN, STDOUT or STDERR`);
  }
  for (const opt of values['security-opt'] ?? []) {
    // The Pod always runs with allowPrivilegeEscalation: false; other options have no Pod equivalent here.
    if (opt !== 'no-new-privileges' && opt !== 'no-new-privileges:true' && opt !== 'no-new-privileges=true')
      throw new FnRuntimeError(`docker run: unsupported --security-opt ${opt}`, {
        hints: ['krun always sets no-new-privileges, drops all capabilities and uses the RuntimeDefault seccomp'],
      });
  }
  const last = (name: string) => values[name]?.at(-1);
  return {
    image,
    args: args.slice(i + 1),
    entrypoint: last('entrypoint'),
    workdir: last('workdir'),
    env: parseEnv(values.env ?? [], env),
    denyNetwork: parseNetwork(last('network') ?? 'bridge'),
    user: last('user') === undefined ? { uid: NOBODY, gid: NOBODY } : parseUser(last('user') ?? ''),
    mounts: (values.mount ?? []).map((m) => parseMount(m, cwd)),
    pull: parsePull(last('pull') ?? 'missing'),
    stdin: booleans.has('interactive'),
  };
}
