import { Args, Flags } from '@oclif/core';
import { parseDuration } from '../../lib/cli/duration.ts';
import { KrunCommand } from '../../lib/cli/krun-command.ts';
import {
  DEFAULT_CPU,
  DEFAULT_HELPER_IMAGE,
  DEFAULT_MEMORY,
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
} from '../../lib/fn/spec.ts';
import { contextFlag, kubeconfigFlag } from '../../lib/setup/flags.ts';

const duration = (summary: string, env: string, ms: number, help: string) =>
  Flags.custom<number>({
    summary,
    env,
    default: ms,
    defaultHelp: async () => help,
    parse: async (input) => parseDuration(input),
  })();

export default class FnRun extends KrunCommand {
  static override summary = 'Run a KRM function as a Kubernetes Pod';
  static override description =
    "Creates a Pod for IMAGE (non-root, no ServiceAccount token unless --service-account, resource limits, restartPolicy Never), streams stdin to it and its stdout back byte for byte, its stderr to stderr, exits with the function's status and deletes the Pod, also on Ctrl-C, errors and timeouts. Failures of the Pod itself (image pull errors, no node fits, timeouts) exit with 125, an OOM kill with 137. Needs an API server that offers the v5.channel.k8s.io attach protocol (Kubernetes 1.30 or later).";
  static override examples = [
    '# Run a function on a ResourceList\n<%= config.bin %> <%= command.id %> ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2 -n krm-fn < resourcelist.yaml > result.yaml',
    '# With files from this machine and an environment variable, network allowed\n<%= config.bin %> <%= command.id %> example.com/fn:v1 --mount type=bind,source=./data,target=/data,readonly -e MODE=strict --network host < in.yaml',
    "# Arguments for the image's entrypoint go after --\n<%= config.bin %> <%= command.id %> example.com/fn:v1 -- --verbose < in.yaml",
  ];
  static override strict = false;
  static override args = {
    image: Args.string({ description: 'The function image', required: true }),
  };
  static override flags = {
    namespace: Flags.string({
      char: 'n',
      summary: "Namespace of the Pod (default: the kubeconfig context's, else default)",
      env: 'KRUN_NAMESPACE',
    }),
    network: Flags.option({
      options: ['none', 'host', 'bridge'] as const,
      summary: 'none: a NetworkPolicy denies all traffic; host, bridge: the Pod network',
      env: 'KRUN_FN_NETWORK',
      default: 'none' as const,
    })(),
    mount: Flags.string({
      summary: 'type=bind,source=PATH,target=PATH,readonly: local files in a ConfigMap',
      multiple: true,
    }),
    env: Flags.string({ char: 'e', summary: 'NAME=VALUE, or NAME to pass this variable', multiple: true }),
    user: Flags.string({ summary: 'nobody, UID or UID:GID (numeric)', env: 'KRUN_FN_USER', default: 'nobody' }),
    pull: Flags.option({
      options: ['missing', 'always', 'never'] as const,
      summary: 'Image pull policy: IfNotPresent, Always or Never',
      env: 'KRUN_FN_PULL',
      default: 'missing' as const,
    })(),
    cpu: Flags.string({ summary: 'CPU limit', env: 'KRUN_FN_CPU', default: DEFAULT_CPU }),
    memory: Flags.string({ summary: 'Memory limit (and request)', env: 'KRUN_FN_MEMORY', default: DEFAULT_MEMORY }),
    timeout: duration('Limit of the whole run', 'KRUN_FN_TIMEOUT', DEFAULT_TIMEOUT_MS, '5m'),
    'start-timeout': duration(
      'How long the Pod may take to start',
      'KRUN_FN_START_TIMEOUT',
      DEFAULT_START_TIMEOUT_MS,
      '2m',
    ),
    'service-account': Flags.string({
      summary: 'Run as this ServiceAccount, with its token (default: no token)',
      env: 'KRUN_FN_SERVICE_ACCOUNT',
    }),
    keep: Flags.boolean({ summary: 'Keep the Pod and its objects afterwards', env: 'KRUN_FN_KEEP' }),
    'helper-image': Flags.string({
      summary: 'Image with tar that unpacks mounts too big for a ConfigMap',
      env: 'KRUN_FN_HELPER_IMAGE',
      default: DEFAULT_HELPER_IMAGE,
    }),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(FnRun);
    const ctx = this.context(flags);
    const { parseEnv, parseMount, parseNetwork, parsePull, parseUser } = await import('../../lib/fn/spec.ts');
    const { runFunction } = await import('../../lib/fn/run.ts');
    const status = await runFunction(
      {
        image: args.image,
        args: (argv as string[]).slice(1),
        env: parseEnv(flags.env ?? [], ctx.env),
        denyNetwork: parseNetwork(flags.network),
        user: parseUser(flags.user),
        mounts: (flags.mount ?? []).map((m) => parseMount(m, ctx.cwd)),
        pull: parsePull(flags.pull),
        stdin: true,
      },
      {
        namespace: flags.namespace,
        kubeconfig: flags.kubeconfig,
        context: flags.context,
        timeoutMs: flags.timeout,
        startTimeoutMs: flags['start-timeout'],
        cpu: flags.cpu,
        memory: flags.memory,
        serviceAccount: flags['service-account'],
        keep: flags.keep,
        helperImage: flags['helper-image'],
      },
      ctx,
    );
    if (status !== 0) this.exitWith(status);
  }
}
