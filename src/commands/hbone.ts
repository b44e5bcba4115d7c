import { Args, Flags } from '@oclif/core';
import { KrunCommand } from '../lib/cli/krun-command.ts';
import { runHboneClient } from '../lib/hbone/run-client.ts';

export default class Hbone extends KrunCommand {
  static override summary = 'Tunnel stdin/stdout or local ports to a workload over HBONE';
  static override description =
    `Opens TCP tunnels as HTTP/2 streams (POST /_hbone/<target>) to the HBONE server that \`krun run\` starts, \
through the service's own URL: Cloud Run's front end authenticates the Google ID token krun sends. Without -L, stdin \
and stdout are the tunnel (an OpenSSH ProxyCommand); with -L, each local connection gets its own tunnel, all over one \
HTTP/2 connection. When HTTP/2 is not available end to end, tunnels fall back to WebSocket (said on stderr).

Targets: 22 (the SSH debug server), 15003 (the mesh's inbound mTLS port), the app port, or a name the workload \
defines with PORT_<name>.

EXIT CODES
  0    the tunnel closed cleanly
  2    bad arguments or flags
  130  interrupted (-L runs until interrupted)
  255  the tunnel could not be opened or broke (reason on stderr)`;

  static override examples = [
    "# SSH through the service URL\nssh -o ProxyCommand='<%= config.bin %> <%= command.id %> https://SERVICE-URL/_hbone/22' root@SERVICE",
    '# Forward local port 2222 to the SSH server and 8081 to the PORT_admin target\n<%= config.bin %> <%= command.id %> -L 2222:22 -L 8081:admin https://SERVICE-URL',
    '# A server with its own token issuer\n<%= config.bin %> <%= command.id %> --token-file /var/run/secrets/tokens/krun https://VM:15009/_hbone/22',
  ];

  static override args = {
    url: Args.string({
      description:
        'https://SERVICE-URL/_hbone/<port or name> (or the service URL alone with -L); HOST:PORT is short for https://HOST/_hbone/PORT',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override flags = {
    'local-forward': Flags.string({
      char: 'L',
      summary: 'Forward [addr:]localport to a target (port, name or host:port); repeatable',
      multiple: true,
      multipleNonGreedy: true,
      delimiter: ',',
      env: 'KRUN_LOCAL_FORWARD',
    }),
    auth: Flags.option({
      options: ['google', 'none'] as const,
      summary: 'Credentials to send: a Google ID token for the service URL, or none (default: google for https)',
      env: 'KRUN_AUTH',
    })(),
    token: Flags.string({
      summary: 'Send this bearer token instead of a Google ID token',
      env: 'KRUN_TOKEN',
      exclusive: ['token-file'],
    }),
    'token-file': Flags.string({
      summary: 'Send the bearer token in this file (re-read for every tunnel)',
      env: 'KRUN_TOKEN_FILE',
    }),
    audience: Flags.string({
      summary: 'Audience of the Google ID token (default: the service URL)',
      env: 'KRUN_AUDIENCE',
    }),
    'impersonate-service-account': Flags.string({
      summary: 'Get the ID token as this service account, using your credentials',
      env: 'KRUN_IMPERSONATE_SERVICE_ACCOUNT',
    }),
    'ca-file': Flags.string({
      summary: 'Also trust the CA certificates in this PEM file (servers with their own TLS)',
      env: 'KRUN_CA_FILE',
    }),
    transport: Flags.option({
      options: ['auto', 'h2', 'websocket'] as const,
      summary: 'HTTP/2 with WebSocket fallback (auto), or only one of them',
      env: 'KRUN_TRANSPORT',
    })(),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Hbone);
    await runHboneClient(
      {
        url: args.url,
        ...(flags['local-forward'] ? { localForwards: flags['local-forward'] } : {}),
        ...(flags.auth ? { auth: flags.auth } : {}),
        ...(flags.token ? { token: flags.token } : {}),
        ...(flags['token-file'] ? { tokenFile: flags['token-file'] } : {}),
        ...(flags.audience ? { audience: flags.audience } : {}),
        ...(flags['impersonate-service-account']
          ? { impersonateServiceAccount: flags['impersonate-service-account'] }
          : {}),
        ...(flags['ca-file'] ? { caFile: flags['ca-file'] } : {}),
        ...(flags.transport ? { transport: flags.transport } : {}),
      },
      this.context(flags),
    );
  }
}
