// Flags the operator commands (ssh, exec, cp, port-forward, ssh-config) share, each with its KRUN_ twin.
import { Args, Flags } from '@oclif/core';

/** The exit codes of commands that run something remotely (ssh, exec), for their help text. */
export const REMOTE_EXIT_CODES = `EXIT CODES
  n    the remote command's status (128 + signal number when a signal killed it)
  1    the target could not be resolved, or another local failure
  2    bad arguments or flags
  255  the tunnel or SSH connection failed (reason on stderr)`;

/** The TARGET argument of the operator commands; without it a terminal offers the region's services. */
export const targetArg = Args.string({
  description: 'Cloud Run service name, https:// URL, or host:port (default: pick one on a terminal)',
});

/**
 * TARGET and the command after it, from the raw and parsed argv of `ssh`/`exec` (oclif drops `--`, so in
 * `krun exec -- ls` "ls" would pass for TARGET): the arguments before `--`, if any, start with TARGET.
 */
export function targetAndCommand(
  raw: readonly string[],
  parsed: readonly string[],
): { target: string | undefined; command: string[] } {
  const dash = raw.indexOf('--');
  const before = dash < 0 ? parsed.length : parsed.length - (raw.length - dash - 1);
  return before > 0 ? { target: parsed[0], command: parsed.slice(1) } : { target: undefined, command: [...parsed] };
}

export const targetFlags = {
  project: Flags.string({
    summary: 'Project of a service TARGET (default: PROJECT_ID, CLOUDSDK_CORE_PROJECT, gcloud config)',
    env: 'KRUN_PROJECT',
  }),
  region: Flags.string({
    summary: 'Region of a service TARGET (default: CLOUDSDK_RUN_REGION, gcloud config run/region)',
    env: 'KRUN_REGION',
  }),
  auth: Flags.option({
    options: ['google', 'none'] as const,
    summary: 'Send a Google ID token for the service URL, or nothing (default: google for https)',
    env: 'KRUN_AUTH',
  })(),
  'token-file': Flags.string({
    summary: 'Send the bearer token in this file instead (re-read for every tunnel)',
    env: 'KRUN_TOKEN_FILE',
  }),
  'impersonate-service-account': Flags.string({
    summary: 'Get the ID token as this service account, using your credentials',
    env: 'KRUN_IMPERSONATE_SERVICE_ACCOUNT',
  }),
  'ca-file': Flags.string({
    summary: 'Also trust the CA certificates in this PEM file (host:port targets with their own TLS)',
    env: 'KRUN_CA_FILE',
  }),
};

export const sshFlags = {
  'known-hosts': Flags.string({
    summary: 'Pinned host keys (default: ~/.config/krun/known_hosts)',
    env: 'KRUN_KNOWN_HOSTS',
  }),
};

/** `-i` is the identity file for ssh and cp (as in OpenSSH); exec keeps kubectl's `-i` for stdin. */
export function identityFileFlag(short: boolean) {
  return Flags.string({
    ...(short ? { char: 'i' as const } : {}),
    summary: 'SSH private key (default: the agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)',
    env: 'KRUN_IDENTITY_FILE',
  });
}

type Parsed = {
  project?: string | undefined;
  region?: string | undefined;
  auth?: 'google' | 'none' | undefined;
  'token-file'?: string | undefined;
  'impersonate-service-account'?: string | undefined;
  'ca-file'?: string | undefined;
  'known-hosts'?: string | undefined;
  'identity-file'?: string | undefined;
};

/** The parsed shared flags as service options. */
export function operatorOptions(flags: Parsed) {
  return {
    project: flags.project,
    region: flags.region,
    auth: flags.auth,
    tokenFile: flags['token-file'],
    impersonateServiceAccount: flags['impersonate-service-account'],
    caFile: flags['ca-file'],
    knownHostsFile: flags['known-hosts'],
    identityFile: flags['identity-file'],
  };
}
