import { Flags } from '@oclif/core';
import { outputFlag } from '../lib/cli/flags.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { describeConfig } from '../lib/run/config.ts';
import { launch, resolve } from '../lib/run/launcher.ts';
import { formatSettings } from '../lib/run/print-config.ts';
import { SETTINGS, type SettingKey } from '../lib/run/settings.ts';

const settingFlags = Object.fromEntries(
  SETTINGS.map((s) => [
    s.flag,
    s.key === 'mounts'
      ? Flags.string({ summary: `${s.summary} [env: ${s.env}]`, helpGroup: 'SETTINGS', multiple: true })
      : Flags.string({
          summary: `${s.summary} [env: ${s.env}]`,
          helpGroup: 'SETTINGS',
          ...(s.key === 'namespace' ? { char: 'n' as const } : {}),
        }),
  ]),
);

export default class Run extends KrunCommand {
  static override summary = 'Run an app as if it were a mesh-enabled Pod';
  static override description =
    `Finds the cluster (KUBECONFIG, in-cluster, or none: standalone), writes the ServiceAccount tokens, Secrets and ConfigMaps a Pod would have, starts the app with a Pod-like environment, waits until it is ready, and supervises it: signals are forwarded and krun exits with the app's status. Every setting is an environment variable first (shown as [env: …]); precedence is flag > env > istio-system/mesh-env > derived default.`;
  static override examples = [
    '# The container entrypoint: everything from the environment\n<%= config.bin %> <%= command.id %> -- ./server --port 8080',
    '# Show the resolved configuration and where each value came from, without running anything\n<%= config.bin %> <%= command.id %> --print-config -o yaml',
    '# Mount a Secret and a ConfigMap key as files\nKRUN_MOUNTS=secret:db:/etc/db,configmap:app:/etc/app:settings.json <%= config.bin %> <%= command.id %> -- ./server',
  ];
  static override strict = false;
  static override flags = {
    ...settingFlags,
    'print-config': Flags.boolean({ summary: 'Print the resolved configuration and its sources, then exit' }),
    output: { ...outputFlag(['json', 'yaml'] as const), dependsOn: ['print-config'] },
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Run);
    const ctx = this.context(flags);
    const values: Partial<Record<SettingKey, string>> = {};
    for (const s of SETTINGS) {
      const v = (flags as unknown as Record<string, string | string[] | undefined>)[s.flag];
      if (v !== undefined) values[s.key] = Array.isArray(v) ? v.join(',') : v;
    }
    const options = { flags: values, command: argv as string[], isRoot: process.getuid?.() === 0 };
    if (flags['print-config']) {
      const { config, client } = await resolve(options, ctx);
      client?.close();
      const described = describeConfig(config);
      if (flags.output) await this.printObjects([described], flags.output);
      else await this.write(formatSettings(described));
      return;
    }
    const status = await launch(options, ctx);
    if (status !== 0) this.exitWith(status);
  }
}
