import { Flags } from '@oclif/core';
import { parseDuration } from '../lib/cli/duration.ts';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { DEFAULT_ADMIN_PORT, DEFAULT_TARGET, TUNNEL_METHODS, type TunnelMethod } from '../lib/gate/defaults.ts';
import { contextFlag, kubeconfigFlag } from '../lib/setup/flags.ts';
import { GATE_PORT, ISTIO_SYSTEM } from '../lib/setup/names.ts';

function duration(summary: string, env: string, text: string) {
  return Flags.custom<number>({
    summary,
    env,
    default: parseDuration(text),
    defaultHelp: async () => text,
    parse: async (input) => parseDuration(input),
  })();
}

export default class Gate extends KrunCommand {
  static override summary = 'Route mesh TLS by SNI to Cloud Run over HBONE';
  static override description =
    `The mesh connector (the original's hgate), run in the cluster by \`krun setup-cluster\`. Mesh clients open TLS \
(Istio mTLS) to the gate's port; the gate reads the server name (SNI) of each ClientHello without terminating TLS, \
maps \`outbound_.PORT_._.NAME.NAMESPACE.svc.cluster.local\` (or \`NAME.NAMESPACE.svc.cluster.local\`) to the Cloud Run \
URL that \`krun register\` put in the krun.dev/cloud-run-url annotation of the Service or ServiceEntry, and tunnels \
the raw bytes to \`https://URL/_hbone/TARGET\` as HTTP/2 streams, many per connection, with a Google ID token for the \
URL from its own identity (which needs roles/run.invoker on the service). Connections that are not TLS, are \
malformed or oversized, have no SNI or name no registered service are closed at once with a logged reason.

Also keeps istio-system/mesh-env current (mesh roots, the gate's load-balancer addresses, project and cluster) and \
serves /healthz, /readyz and Prometheus /metrics on the admin port. On SIGTERM it stops taking connections (readyz \
answers 503) and lets open tunnels finish within the grace period.`;

  static override examples = [
    '# What the Deployment that krun setup-cluster installs runs\n<%= config.bin %> <%= command.id %>',
    '# Outside the cluster, against the current kubeconfig context, on loopback only\n<%= config.bin %> <%= command.id %> --address 127.0.0.1 --admin-port 9090',
    '# Also route Services named like a URL prefix, as the original did\n<%= config.bin %> <%= command.id %> --name-fallback',
    "# Tunnel with HTTP/2 CONNECT, to krun run reached without Cloud Run's front end\n<%= config.bin %> <%= command.id %> --tunnel-method connect --target 15003",
  ];

  static override flags = {
    address: Flags.string({
      summary: 'Address to listen on',
      env: 'KRUN_GATE_ADDRESS',
      default: '0.0.0.0',
    }),
    port: Flags.integer({
      char: 'p',
      summary: 'The SNI port for mesh TLS (0 picks one)',
      env: 'KRUN_GATE_PORT',
      default: GATE_PORT,
      min: 0,
      max: 65535,
    }),
    'admin-port': Flags.integer({
      summary: 'Port of /healthz, /readyz and /metrics (0 picks one)',
      env: 'KRUN_GATE_ADMIN_PORT',
      default: DEFAULT_ADMIN_PORT,
      min: 0,
      max: 65535,
    }),
    target: Flags.string({
      summary: 'The tunnel target at the service: /_hbone/TARGET',
      env: 'KRUN_GATE_TARGET',
      default: DEFAULT_TARGET,
    }),
    'tunnel-method': Flags.string({
      summary: 'post: POST /_hbone/TARGET (passes Cloud Run); connect: HTTP/2 CONNECT',
      env: 'KRUN_GATE_TUNNEL_METHOD',
      options: [...TUNNEL_METHODS],
      default: 'post',
    }),
    'max-streams-per-connection': Flags.integer({
      summary: 'Tunnels per HTTP/2 connection before another opens',
      env: 'KRUN_GATE_MAX_STREAMS',
      default: 100,
      min: 1,
    }),
    keepalive: duration('Ping interval of the connections to Cloud Run', 'KRUN_GATE_KEEPALIVE', '30s'),
    'hello-timeout': duration('How long a client may take to send its ClientHello', 'KRUN_GATE_HELLO_TIMEOUT', '10s'),
    'mesh-env-interval': duration('How often mesh-env is reconciled', 'KRUN_GATE_MESH_ENV_INTERVAL', '1m'),
    'mesh-env-namespace': Flags.string({
      summary: 'Namespace of the mesh-env the gate keeps current; none: leave it alone',
      env: 'KRUN_GATE_MESH_ENV_NAMESPACE',
      default: ISTIO_SYSTEM,
    }),
    'grace-period': duration('How long open tunnels may finish after SIGTERM', 'KRUN_GATE_GRACE_PERIOD', '25s'),
    'name-fallback': Flags.boolean({
      summary: "Route unregistered Services named like a Cloud Run URL prefix (the original's convention)",
      env: 'KRUN_GATE_NAME_FALLBACK',
    }),
    kubeconfig: kubeconfigFlag,
    context: contextFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Gate);
    const { runGate } = await import('../lib/gate/run-gate.ts');
    const meshEnv = flags['mesh-env-namespace'];
    await runGate(
      {
        listen: { host: flags.address, port: flags.port },
        admin: { host: flags.address, port: flags['admin-port'] },
        target: flags.target,
        tunnelMethod: flags['tunnel-method'] as TunnelMethod,
        maxStreams: flags['max-streams-per-connection'],
        keepAliveMs: flags.keepalive,
        helloTimeoutMs: flags['hello-timeout'],
        meshEnvIntervalMs: flags['mesh-env-interval'],
        meshEnvNamespace: meshEnv === 'none' ? undefined : meshEnv,
        graceMs: flags['grace-period'],
        nameFallback: flags['name-fallback'],
        kubeconfig: flags.kubeconfig,
        context: flags.context,
      },
      this.context(flags),
    );
  }
}
