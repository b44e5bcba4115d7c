import { KrunCommand } from '../lib/cli/krun-command.ts';

export default class Docker extends KrunCommand {
  static override summary = 'Run KRM functions as Pods behind a docker CLI';
  static override description =
    "The subset of the docker CLI that kustomize and kpt call: `docker run` (as kustomize builds it) runs the function as a Kubernetes Pod; `docker version` and `docker image ls` answer kpt's checks. Put a symlink named `docker` pointing to krun first on PATH, and `kustomize build --enable-alpha-plugins` runs containerized functions in the cluster. Configured by environment only: KUBECONFIG (or KRUN_KUBECONFIG), KRUN_NAMESPACE, KRUN_CONTEXT, KRUN_FN_TIMEOUT, KRUN_FN_START_TIMEOUT, KRUN_FN_CPU, KRUN_FN_MEMORY, KRUN_FN_SERVICE_ACCOUNT, KRUN_FN_KEEP, KRUN_FN_HELPER_IMAGE. Unsupported commands and flags fail with status 125, naming them.";
  static override examples = [
    '# Make kustomize run its container functions as Pods\nln -s "$(command -v krun)" ~/bin/docker && PATH=~/bin:$PATH KRUN_NAMESPACE=krm-fn kustomize build --enable-alpha-plugins .',
    '# What kustomize runs, by hand\n<%= config.bin %> <%= command.id %> run --rm -i --network none --user nobody example.com/fn:v1 < resourcelist.yaml',
    '# The version kpt checks\n<%= config.bin %> <%= command.id %> version --format "{{.Client.Version}}"',
  ];
  // docker's flags are parsed by the shim itself (run() never calls this.parse): every argument passes untouched.
  static override strict = false;

  async run(): Promise<void> {
    const ctx = this.context({
      verbose: ['1', 'true'].includes(process.env.KRUN_VERBOSE ?? ''),
      'log-format': undefined,
      json: undefined,
    });
    const { docker } = await import('../lib/fn/docker.ts');
    const argv = this.argv[0] === '--' ? this.argv.slice(1) : this.argv;
    const result = await docker(argv, ctx, this.config.version);
    if (result.output) await this.write(result.output);
    if (result.exitCode !== 0) this.exitWith(result.exitCode);
  }
}
