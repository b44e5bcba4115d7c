// `krun docker`: the subset of the docker CLI that kustomize and kpt call, answered by running functions as Pods.
// `run` runs the function; `version` reports a docker-compatible client version (kpt requires >= 20.10.0);
// `image ls` lists nothing, because a Pod runtime has no local image store (kpt only asks it to resolve --tag).
import type { KrunContext } from '../context.ts';
import { parseDockerRun } from './docker-args.ts';
import { FnRuntimeError } from './errors.ts';
import { runFunction } from './run.ts';
import { settingsFromEnv } from './spec.ts';

/** The docker client version the shim reports: recent enough for every tool that checks. */
export const DOCKER_COMPAT_VERSION = '27.0.0';

export interface DockerResult {
  /** What goes to stdout. */
  readonly output: string;
  readonly exitCode: number;
}

function unsupported(what: string): FnRuntimeError {
  return new FnRuntimeError(`docker ${what} is not supported: krun's docker shim runs KRM functions as Pods`, {
    hints: ['supported: docker run, docker version, docker image ls (docker images)'],
  });
}

/** `docker version --format '{{.Client.Version}}'`: Go templates reduced to the fields a tool may ask for. */
function version(args: readonly string[], krunVersion: string): string {
  let format: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--format' || arg === '-f') format = args[++i];
    else if (arg.startsWith('--format=')) format = arg.slice('--format='.length);
    else throw unsupported(`version ${arg}`);
  }
  if (format === undefined) {
    return `Client: krun docker shim (functions run as Kubernetes Pods)\n Version:    ${DOCKER_COMPAT_VERSION}\n krun:       ${krunVersion}\n`;
  }
  return `${format.replace(/\{\{\s*\.(Client|Server)\.Version\s*\}\}/g, DOCKER_COMPAT_VERSION).replace(/\{\{[^}]*\}\}/g, '')}\n`;
}

function imageList(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--filter' || arg === '-f' || arg === '--format') i++;
    else if (!/^(--filter=|--format=|-q$|--quiet$|-a$|--all$|--no-trunc$)/.test(arg))
      throw unsupported(`image ls ${arg}`);
  }
  return '';
}

export async function docker(argv: readonly string[], ctx: KrunContext, krunVersion: string): Promise<DockerResult> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return {
        output: '',
        exitCode: await runFunction(parseDockerRun(rest, ctx.env, ctx.cwd), settingsFromEnv(ctx.env), ctx),
      };
    case 'version':
      return { output: version(rest, krunVersion), exitCode: 0 };
    case '--version':
      return { output: `Docker version ${DOCKER_COMPAT_VERSION}, build krun-${krunVersion}\n`, exitCode: 0 };
    case 'images':
      return { output: imageList(rest), exitCode: 0 };
    case 'image':
      if (rest[0] === 'ls' || rest[0] === 'list') return { output: imageList(rest.slice(1)), exitCode: 0 };
      throw unsupported(`image ${rest[0] ?? ''}`.trim());
    case undefined:
      throw unsupported('without a command');
    default:
      throw unsupported(command);
  }
}
