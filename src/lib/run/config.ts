// Resolves `krun run`'s configuration with one precedence order: flag > env > mesh-env ConfigMap > derived
// default. Every value remembers where it came from, for --print-config and for error messages. Pure: the
// caller passes in everything (flags, env, mesh-env, what the kubeconfig says), so tests need no process state.
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { UsageError } from '../errors.ts';
import type { DiscoveredCluster } from '../gcp/discover.ts';
import { dataplaneServiceAccount, gkeClusterUrl } from '../gcp/sts.ts';
import { formatHostPort, type HostPort, parseHostPort } from '../net/address.ts';
import { type CaSettings, resolveCaSettings } from './ca-settings.ts';
import { type Mount, parseMounts } from './mounts.ts';
import { PORT_PREFIX, SETTINGS, type SettingKey, type SettingSpec } from './settings.ts';

export interface Value<T> {
  readonly value: T;
  /** "flag --namespace", "env WORKLOAD_NAMESPACE", "mesh-env PROJECT_ID", "kubeconfig context", "default", … */
  readonly source: string;
}

export interface RunConfig extends CaSettings {
  readonly namespace: Value<string>;
  readonly name: Value<string>;
  readonly serviceAccount: Value<string>;
  readonly podName: Value<string>;
  readonly projectId: Value<string | undefined>;
  readonly projectNumber: Value<string | undefined>;
  readonly clusterName: Value<string | undefined>;
  readonly clusterLocation: Value<string | undefined>;
  /** GKE's resource URL of the cluster: pilot-agent's GKE_CLUSTER_URL, and what the STS audience names. */
  readonly clusterUrl: Value<string | undefined>;
  readonly trustDomain: Value<string>;
  readonly kubeconfig: Value<string | undefined>;
  readonly context: Value<string | undefined>;
  readonly baseDir: Value<string>;
  /** host:port of the app: its PORT, the HBONE reverse proxy's and app tunnel's target. */
  readonly appAddress: Value<string>;
  /** Whether krun waits for appAddress to accept connections (PORT_http=- skips only this wait, as in the original). */
  readonly appPortWait: Value<boolean>;
  readonly startupProbeHttp: Value<string | undefined>;
  readonly startupProbeTcp: Value<string | undefined>;
  readonly startupTimeoutSeconds: Value<number>;
  readonly uid: Value<number | undefined>;
  readonly mounts: Value<readonly Mount[]>;
  readonly istioTokenAudience: Value<string>;
  /** The managed-mesh token chain (src/lib/run/google-tokens.ts). */
  readonly googleTokens: Value<GoogleTokensSetting>;
  readonly dataplaneServiceAccount: Value<string | undefined>;
  readonly tokenExpirationSeconds: Value<number>;
  readonly terminationGraceSeconds: Value<number>;
  readonly resyncIntervalSeconds: Value<number>;
  /** host:port the HBONE server listens on (a bare port means all interfaces), or undefined when it is off. */
  readonly hboneListen: Value<string | undefined>;
  /** TLS for the HBONE port (VMs, Docker); undefined serves cleartext HTTP/2 as behind Cloud Run. */
  readonly hboneTls: Value<{ readonly cert: string; readonly key: string } | undefined>;
  /** In-process JWT authentication on the HBONE port, for deployments not behind Cloud Run IAM. */
  readonly hboneAuth: Value<HboneAuth | undefined>;
  /** Loopback port of the SSH debug server, or undefined when it is turned off. */
  readonly sshPort: Value<number | undefined>;
  /** authorized_keys line(s) given inline (SSH_AUTH). */
  readonly sshAuth: Value<string | undefined>;
  /** An authorized_keys file. */
  readonly sshAuthorizedKeys: Value<string | undefined>;
  /** The SSH host key file; unset keeps a generated key under the base dir. */
  readonly sshHostKey: Value<string | undefined>;
  /** Seconds between re-reads of the sshdebug Secret. */
  readonly sshResyncIntervalSeconds: Value<number>;
  /** Where PTY sessions are recorded (absolute), or undefined when they are not. */
  readonly sshRecordDir: Value<string | undefined>;
  readonly sshRecordInput: Value<boolean>;
  readonly sshRecordMaxBytes: Value<number>;
  /** A file that gets every audit event too (absolute). */
  readonly auditFile: Value<string | undefined>;
  /** PORT_<name> targets as host:port: what /_hbone/<name> may reach. */
  readonly ports: Readonly<Record<string, Value<string>>>;
  /** The mesh mode asked for; auto decides from the machine (src/lib/mesh/mode.ts). */
  readonly meshMode: Value<MeshModeSetting>;
  readonly xdsAddr: Value<string>;
  readonly caAddr: Value<string>;
  readonly istiodSan: Value<string>;
  readonly istiodRootCert: Value<string | undefined>;
  readonly clusterId: Value<string>;
  readonly meshId: Value<string>;
  readonly interceptionMode: Value<'REDIRECT' | 'NONE'>;
  /** CIDRs whose outbound traffic is captured; ['*'] means all. */
  readonly outboundIpRangesInclude: Value<readonly string[]>;
  readonly outboundIpRangesExclude: Value<readonly string[]>;
  readonly outboundPortsExclude: Value<readonly number[]>;
  readonly pilotAgent: Value<string>;
  readonly envoy: Value<string>;
  readonly iptablesRestore: Value<string>;
  readonly meshStatusPort: Value<number>;
  /** pilot-agent's --log_output_level and --proxyLogLevel (the original's XDS_AGENT_DEBUG and ENVOY_LOG_LEVEL). */
  readonly agentLogLevel: Value<string | undefined>;
  readonly envoyLogLevel: Value<string | undefined>;
}

export const GOOGLE_TOKENS_SETTINGS = ['off', 'federated', 'dataplane'] as const;
export type GoogleTokensSetting = (typeof GOOGLE_TOKENS_SETTINGS)[number];

export const MESH_MODE_SETTINGS = ['auto', 'sidecar', 'whitebox', 'proxyless', 'none'] as const;
export type MeshModeSetting = (typeof MESH_MODE_SETTINGS)[number];

export interface HboneAuth {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audience: string;
  readonly principals: readonly string[];
}

export interface ConfigInput {
  readonly flags: Readonly<Partial<Record<SettingKey, string>>>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly meshEnv: Readonly<Record<string, string>>;
  /** The namespace of the kubeconfig context, if any. */
  readonly contextNamespace?: string | undefined;
  /** What Google Cloud discovery found: the metadata server's facts and the selected cluster. */
  readonly google?: GoogleFacts | undefined;
  readonly hostname: string;
  readonly isRoot: boolean;
  readonly cwd: string;
}

export interface GoogleFacts {
  readonly project?: string | undefined;
  readonly projectNumber?: string | undefined;
  readonly instanceId?: string | undefined;
  /** The Google service account the instance runs as. */
  readonly serviceAccount?: string | undefined;
  readonly cluster?: DiscoveredCluster | undefined;
}

type Raw = Value<string> | undefined;

/** `k8s-<namespace>@…`: the original's convention naming a workload's namespace by its Google service account. */
export function namespaceFromServiceAccount(email: string | undefined): string | undefined {
  return /^k8s-([a-z0-9]([-a-z0-9]*[a-z0-9])?)@/.exec(email ?? '')?.[1];
}

function fact(value: string | undefined, source: string): Value<string> | undefined {
  return value ? { value, source } : undefined;
}

function lookup(spec: SettingSpec, input: ConfigInput): Raw {
  const flag = input.flags[spec.key];
  if (flag !== undefined && flag !== '') return { value: flag, source: `flag --${spec.flag}` };
  const env = input.env[spec.env];
  if (env !== undefined && env !== '') return { value: env, source: `env ${spec.env}` };
  const mesh = spec.meshEnv ? input.meshEnv[spec.env] : undefined;
  if (mesh !== undefined && mesh !== '') return { value: mesh, source: `mesh-env ${spec.env}` };
  return undefined;
}

function specOf(key: SettingKey): SettingSpec {
  const spec = SETTINGS.find((s) => s.key === key);
  if (!spec) throw new Error(`no setting ${key}`);
  return spec;
}

function bad(raw: Value<string>, what: string, hint: string): UsageError {
  return new UsageError(`${raw.source} is "${raw.value}": ${what}`, { hints: [hint] });
}

/** A host:port setting normalised (a bare port means loopback), keeping its source. */
function address(raw: Value<string>): Value<string>;
function address(raw: Raw): Value<string> | undefined;
function address(raw: Raw): Value<string> | undefined {
  return raw ? { value: formatHostPort(parseAddress(raw)), source: raw.source } : undefined;
}

/** The setting as a host:port, a bare port meaning the workload's loopback; a usage error otherwise. */
export function parseAddress(raw: Value<string>): HostPort {
  const address = parseHostPort(raw.value);
  if (address) return address;
  const name = raw.source.split(' ')[1];
  throw bad(raw, 'not a port or host:port', `${name}=8080 or ${name}=127.0.0.1:8080`);
}

function seconds(raw: Raw, fallback: number, min: number): Value<number> {
  if (!raw) return { value: fallback, source: 'default' };
  const n = Number(raw.value);
  if (!Number.isFinite(n) || n < min)
    throw bad(raw, `not a number of seconds ≥ ${min}`, `${raw.source.split(' ')[1]}=${fallback}`);
  return { value: n, source: raw.source };
}

function optional(raw: Raw): Value<string | undefined> {
  return raw ?? { value: undefined, source: 'unset' };
}

/** A path setting made absolute against the working directory. */
function absolute(raw: Raw, cwd: string): Value<string | undefined> {
  return raw ? { value: resolve(cwd, raw.value), source: raw.source } : { value: undefined, source: 'unset' };
}

function boolean(raw: Raw): Value<boolean> {
  if (!raw) return { value: false, source: 'default' };
  const v = raw.value.trim().toLowerCase();
  if (!['true', 'false', '1', '0'].includes(v)) throw bad(raw, 'not true or false', `${raw.source.split(' ')[1]}=true`);
  return { value: v === 'true' || v === '1', source: raw.source };
}

function byteCount(raw: Raw, fallback: number): Value<number> {
  if (!raw) return { value: fallback, source: 'default' };
  const n = Number(raw.value.trim());
  if (!/^\d+$/.test(raw.value.trim()) || n < 1024) {
    throw bad(raw, 'not a number of bytes ≥ 1024', `${raw.source.split(' ')[1]}=${fallback}`);
  }
  return { value: n, source: raw.source };
}

/** Cloud Run's K_SERVICE, or its `version--name` form (the original set only the version label: a bug). */
function nameFromService(kService: string): string {
  const i = kService.lastIndexOf('--');
  return i >= 0 ? kService.slice(i + 2) : kService;
}

export function resolveConfig(input: ConfigInput): RunConfig {
  const get = (key: SettingKey) => lookup(specOf(key), input);

  const google = input.google;
  const namespace: Value<string> = get('namespace') ??
    fact(input.contextNamespace, 'kubeconfig context') ??
    fact(namespaceFromServiceAccount(google?.serviceAccount), 'derived from the Google service account') ?? {
      value: 'default',
      source: 'default',
    };
  const kService = input.env.K_SERVICE;
  const name: Value<string> = get('name') ??
    (kService ? { value: nameFromService(kService), source: 'derived from K_SERVICE' } : undefined) ?? {
      value: namespace.value,
      source: 'derived from the namespace',
    };
  const kRevision = input.env.K_REVISION;
  // Instances of one revision share K_REVISION: the instance id tells them apart, as the original did.
  const instance = google?.instanceId?.slice(0, 8);
  const podName: Value<string> = kRevision
    ? instance
      ? { value: `${kRevision}-${instance}`, source: 'derived from K_REVISION and the instance id' }
      : { value: kRevision, source: 'derived from K_REVISION' }
    : { value: input.hostname.split('.')[0] || name.value, source: 'derived from the hostname' };

  const projectId = optional(get('projectId') ?? fact(google?.project, 'Google Cloud discovery'));
  const trustDomain: Value<string> = get('trustDomain') ??
    (projectId.value ? { value: `${projectId.value}.svc.id.goog`, source: 'derived from PROJECT_ID' } : undefined) ?? {
      value: 'cluster.local',
      source: 'default',
    };
  // OSS istiod authenticates agents with audience istio-ca; Google's managed control planes with the trust domain.
  const istioTokenAudience: Value<string> =
    get('istioTokenAudience') ??
    (input.env.OSS_ISTIO || trustDomain.value === 'cluster.local'
      ? { value: 'istio-ca', source: 'default (OSS Istio)' }
      : { value: trustDomain.value, source: 'derived from the trust domain' });

  const googleRaw = get('googleTokens');
  const googleTokens = googleRaw?.value.trim().toLowerCase();
  if (googleRaw && !GOOGLE_TOKENS_SETTINGS.includes(googleTokens as GoogleTokensSetting)) {
    throw bad(googleRaw, `not one of ${GOOGLE_TOKENS_SETTINGS.join(', ')}`, 'KRUN_GOOGLE_TOKENS=federated');
  }
  const dataplaneNumber = projectNumber(get, google).value;
  const ca = resolveCaSettings(get('caPool'), get('caKeyType'), googleRaw);

  const baseRaw = get('baseDir');
  const baseDir: Value<string> = baseRaw
    ? { value: isAbsolute(baseRaw.value) ? baseRaw.value : resolve(input.cwd, baseRaw.value), source: baseRaw.source }
    : {
        value: input.isRoot ? '/' : input.cwd,
        source: input.isRoot ? 'default (root)' : 'default (working directory)',
      };

  const appRaw = get('appPort');
  const skipWait = appRaw?.value === '-';
  const appAddress: Value<string> =
    appRaw && !skipWait ? address(appRaw) : { value: '127.0.0.1:8080', source: 'default' };
  const appPortWait: Value<boolean> = { value: !skipWait, source: appRaw?.source ?? 'default' };

  const hboneRaw = get('hbonePort');
  // Cloud Run's front end reaches the container on its external interface: all interfaces unless told otherwise.
  const hboneListen: Value<string | undefined> =
    hboneRaw?.value === '-'
      ? { value: undefined, source: hboneRaw.source }
      : hboneRaw
        ? {
            value: /^\d+$/.test(hboneRaw.value.trim())
              ? `0.0.0.0:${parseAddress(hboneRaw).port}`
              : formatHostPort(parseAddress(hboneRaw)),
            source: hboneRaw.source,
          }
        : { value: '0.0.0.0:15009', source: 'default' };

  const [tlsCert, tlsKey] = [get('hboneTlsCert'), get('hboneTlsKey')];
  if (Boolean(tlsCert) !== Boolean(tlsKey)) {
    const given = (tlsCert ?? tlsKey) as Value<string>;
    throw bad(
      given,
      'TLS needs both a certificate and a key',
      'set KRUN_HBONE_TLS_CERT and KRUN_HBONE_TLS_KEY together',
    );
  }
  const hboneTls: Value<{ cert: string; key: string } | undefined> =
    tlsCert && tlsKey
      ? { value: { cert: tlsCert.value, key: tlsKey.value }, source: tlsCert.source }
      : { value: undefined, source: 'unset' };
  const [issuer, jwks, audience] = [get('hboneJwtIssuer'), get('hboneJwksUri'), get('hboneJwtAudience')];
  const authParts = [issuer, jwks, audience].filter(Boolean);
  if (authParts.length > 0 && authParts.length < 3) {
    throw new UsageError('in-process HBONE authentication needs an issuer, a JWKS URL and an audience', {
      hints: ['set KRUN_HBONE_JWT_ISSUER, KRUN_HBONE_JWKS_URI and KRUN_HBONE_JWT_AUDIENCE together'],
    });
  }
  const principals = get('hbonePrincipals');
  const hboneAuth: Value<HboneAuth | undefined> =
    issuer && jwks && audience
      ? {
          value: {
            issuer: issuer.value,
            jwksUri: jwks.value,
            audience: audience.value,
            principals: (principals?.value ?? '')
              .split(',')
              .map((p) => p.trim())
              .filter(Boolean),
          },
          source: issuer.source,
        }
      : { value: undefined, source: 'unset' };

  const sshRaw = get('sshPort');
  const sshPortNumber = sshRaw && sshRaw.value !== '-' ? Number(sshRaw.value.trim()) : undefined;
  if (
    sshRaw &&
    sshRaw.value !== '-' &&
    !(/^\d+$/.test(sshRaw.value.trim()) && sshPortNumber && sshPortNumber < 65536)
  ) {
    throw bad(sshRaw, 'not a port number (the SSH server listens on 127.0.0.1 only)', 'KRUN_SSH_PORT=15022');
  }
  const sshPort: Value<number | undefined> = sshRaw
    ? { value: sshPortNumber, source: sshRaw.source }
    : { value: 15022, source: 'default' };

  const mesh = resolveMesh(input, get, trustDomain, projectNumber(get, google));

  const uidRaw = get('uid');
  if (uidRaw && !/^\d+$/.test(uidRaw.value)) throw bad(uidRaw, 'not a numeric UID', 'K8S_UID=1000');
  const mountsRaw = get('mounts');

  return {
    namespace,
    name,
    serviceAccount: get('serviceAccount') ?? { value: 'default', source: 'default' },
    podName,
    projectId,
    projectNumber: projectNumber(get, google),
    clusterName: optional(get('clusterName') ?? fact(google?.cluster?.name, 'GKE discovery')),
    clusterLocation: optional(get('clusterLocation') ?? fact(google?.cluster?.location, 'GKE discovery')),
    clusterUrl: clusterUrl(projectId.value, get('clusterName'), get('clusterLocation'), google?.cluster),
    trustDomain,
    kubeconfig: optional(get('kubeconfig')),
    context: optional(get('context')),
    baseDir,
    appAddress,
    appPortWait,
    startupProbeHttp: optional(get('startupProbeHttp')),
    startupProbeTcp: optional(address(get('startupProbeTcp'))),
    startupTimeoutSeconds: seconds(get('startupTimeout'), 60, 0),
    uid: uidRaw ? { value: Number(uidRaw.value), source: uidRaw.source } : { value: undefined, source: 'unset' },
    mounts: mountsRaw
      ? { value: parseMounts(mountsRaw.value, mountsRaw.source), source: mountsRaw.source }
      : { value: [], source: 'unset' },
    istioTokenAudience,
    googleTokens: googleRaw
      ? { value: googleTokens as GoogleTokensSetting, source: googleRaw.source }
      : ca.caPool.value
        ? { value: 'federated', source: 'default with CA_POOL' }
        : { value: 'off', source: 'default' },
    dataplaneServiceAccount:
      get('dataplaneServiceAccount') ??
      (dataplaneNumber
        ? { value: dataplaneServiceAccount(dataplaneNumber), source: 'derived from PROJECT_NUMBER' }
        : { value: undefined, source: 'unset' }),
    ...ca,
    tokenExpirationSeconds: seconds(get('tokenExpiration'), 3600, 600),
    terminationGraceSeconds: seconds(get('terminationGrace'), 10, 0),
    resyncIntervalSeconds: seconds(get('resyncInterval'), 60, 0.05),
    hboneListen,
    hboneTls,
    hboneAuth,
    sshPort,
    sshAuth: optional(get('sshAuth')),
    sshAuthorizedKeys: optional(get('sshAuthorizedKeys')),
    sshHostKey: optional(get('sshHostKey')),
    sshResyncIntervalSeconds: seconds(get('sshResyncInterval'), 60, 0.05),
    sshRecordDir: absolute(get('sshRecordDir'), input.cwd),
    sshRecordInput: boolean(get('sshRecordInput')),
    sshRecordMaxBytes: byteCount(get('sshRecordMaxBytes'), 64 * 1024 * 1024),
    auditFile: absolute(get('auditFile'), input.cwd),
    ports: resolvePorts(input),
    ...mesh,
  };
}

/** Named by the settings, the URL is derived from them; discovered, it is the discovered cluster's (maybe none). */
function clusterUrl(
  project: string | undefined,
  name: Raw,
  location: Raw,
  discovered: DiscoveredCluster | undefined,
): Value<string | undefined> {
  if (project && name && location) {
    return {
      value: gkeClusterUrl(project, location.value, name.value),
      source: `derived from the project, ${name.source} and ${location.source}`,
    };
  }
  if (discovered)
    return { value: discovered.url, source: discovered.url ? 'GKE discovery' : (discovered.noUrl ?? 'unset') };
  return { value: undefined, source: 'unset' };
}

function projectNumber(get: (key: SettingKey) => Raw, google: GoogleFacts | undefined): Value<string | undefined> {
  return optional(get('projectNumber') ?? fact(google?.projectNumber, 'metadata server'));
}

function port(raw: Raw, fallback: number): Value<number> {
  if (!raw) return { value: fallback, source: 'default' };
  const n = Number(raw.value.trim());
  if (!/^\d+$/.test(raw.value.trim()) || n < 1 || n > 65535) {
    throw bad(raw, 'not a port number', `${raw.source.split(' ')[1]}=${fallback}`);
  }
  return { value: n, source: raw.source };
}

type MeshSettings = Pick<
  RunConfig,
  | 'meshMode'
  | 'xdsAddr'
  | 'caAddr'
  | 'istiodSan'
  | 'istiodRootCert'
  | 'clusterId'
  | 'meshId'
  | 'interceptionMode'
  | 'outboundIpRangesInclude'
  | 'outboundIpRangesExclude'
  | 'outboundPortsExclude'
  | 'pilotAgent'
  | 'envoy'
  | 'iptablesRestore'
  | 'meshStatusPort'
  | 'agentLogLevel'
  | 'envoyLogLevel'
>;

function list(raw: Raw): string[] {
  return (raw?.value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

function resolveMesh(
  input: ConfigInput,
  get: (key: SettingKey) => Raw,
  trustDomain: Value<string>,
  projectNumber: Value<string | undefined>,
): MeshSettings {
  const modeRaw = get('meshMode');
  const mode = modeRaw?.value.trim().toLowerCase();
  if (modeRaw && !MESH_MODE_SETTINGS.includes(mode as MeshModeSetting)) {
    throw bad(modeRaw, `not one of ${MESH_MODE_SETTINGS.join(', ')}`, 'KRUN_MESH_MODE=auto');
  }
  // The original's FindXDSAddr: the in-cluster istiod behind the gate's internal load balancer (mesh-env IMCON_ADDR).
  const imcon = input.meshEnv.IMCON_ADDR;
  const xdsRaw = get('xdsAddr');
  // The original's XDS_ADDR=-: no pilot-agent, the app alone (an explicit other mode contradicts it).
  const xdsOff = xdsRaw?.value.trim() === '-';
  if (xdsOff && modeRaw && mode !== 'none' && mode !== 'auto') {
    throw bad(modeRaw, `contradicts ${xdsRaw?.source}=-, which turns the mesh off`, 'unset one of the two');
  }
  const xdsAddr: Value<string> =
    xdsRaw && !xdsOff
      ? { value: formatHostPort(parseAddress(xdsRaw)), source: xdsRaw.source }
      : imcon
        ? { value: `${imcon}:15012`, source: 'derived from mesh-env IMCON_ADDR' }
        : { value: 'istiod.istio-system.svc:15012', source: 'default' };
  const caRaw = get('caAddr');
  const interceptionRaw = get('interceptionMode');
  const interception = interceptionRaw?.value.trim().toUpperCase();
  if (interceptionRaw && interception !== 'REDIRECT' && interception !== 'NONE') {
    throw bad(interceptionRaw, 'not REDIRECT or NONE', 'ISTIO_META_INTERCEPTION_MODE=NONE');
  }
  const rangesRaw = get('outboundIpRangesInclude');
  const excludedRaw = get('outboundIpRangesExclude');
  const portsRaw = get('outboundPortsExclude');
  const ports = list(portsRaw).map((p) => port({ value: p, source: portsRaw?.source ?? '' }, 1).value);
  return {
    meshMode: xdsOff
      ? { value: 'none', source: `${xdsRaw?.source}=-` }
      : modeRaw
        ? { value: mode as MeshModeSetting, source: modeRaw.source }
        : { value: 'auto', source: 'default' },
    xdsAddr,
    caAddr: caRaw
      ? { value: formatHostPort(parseAddress(caRaw)), source: caRaw.source }
      : { value: xdsAddr.value, source: 'the xDS address' },
    istiodSan: get('istiodSan') ?? { value: 'istiod.istio-system.svc', source: 'default' },
    istiodRootCert: optional(get('istiodRootCert')),
    clusterId: get('clusterId') ?? { value: 'Kubernetes', source: "default (Istio's)" },
    meshId:
      get('meshId') ??
      (projectNumber.value
        ? { value: `proj-${projectNumber.value}`, source: 'derived from PROJECT_NUMBER' }
        : { value: trustDomain.value, source: 'the trust domain' }),
    interceptionMode: interceptionRaw
      ? { value: interception as 'REDIRECT' | 'NONE', source: interceptionRaw.source }
      : { value: 'REDIRECT', source: 'default' },
    outboundIpRangesInclude: rangesRaw
      ? { value: list(rangesRaw), source: rangesRaw.source }
      : { value: ['*'], source: 'default' },
    outboundIpRangesExclude: excludedRaw
      ? { value: list(excludedRaw).map((r) => cidrOf(excludedRaw, r)), source: excludedRaw.source }
      : { value: [], source: 'unset' },
    outboundPortsExclude: portsRaw ? { value: ports, source: portsRaw.source } : { value: [], source: 'unset' },
    pilotAgent: get('pilotAgent') ?? { value: '/usr/local/bin/pilot-agent', source: 'default' },
    envoy: get('envoy') ?? { value: '/usr/local/bin/envoy', source: 'default' },
    iptablesRestore: get('iptablesRestore') ?? { value: 'iptables-restore', source: 'default' },
    meshStatusPort: port(get('meshStatusPort'), 15020),
    agentLogLevel: optional(get('agentLogLevel')),
    envoyLogLevel: optional(get('envoyLogLevel')),
  };
}

/** An address or CIDR of either family, as written (iptables takes it as is). */
function cidrOf(raw: NonNullable<Raw>, range: string): string {
  const [ip, bits, ...rest] = range.split('/');
  const family = isIP(ip ?? '');
  const max = family === 6 ? 128 : 32;
  if (!family || rest.length > 0 || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) {
    throw bad({ ...raw, value: range }, 'not an IP address or CIDR', `${raw.source.split(' ')[1]}=169.254.169.254/32`);
  }
  return range;
}

/** PORT_<name> from mesh-env, then from the environment, which wins (the original lost env ports: a bug). */
function resolvePorts(input: ConfigInput): Record<string, Value<string>> {
  const ports: Record<string, Value<string>> = {};
  const add = (entries: [string, string | undefined][], origin: string) => {
    for (const [key, value] of entries) {
      if (!key.startsWith(PORT_PREFIX) || key === 'PORT_http' || !value) continue;
      const name = key.slice(PORT_PREFIX.length);
      ports[name] = address({ value, source: `${origin} ${key}` });
    }
  };
  add(Object.entries(input.meshEnv), 'mesh-env');
  add(Object.entries(input.env), 'env');
  return ports;
}

/** The configuration as plain data, for --print-config: each setting's value and source. */
export function describeConfig(config: RunConfig): Record<string, { value: unknown; source: string }> {
  const out: Record<string, { value: unknown; source: string }> = {};
  for (const [key, v] of Object.entries(config)) {
    if (key === 'ports') {
      for (const [name, p] of Object.entries(v as RunConfig['ports'])) out[`ports.${name}`] = p;
    } else {
      out[key] = v as Value<unknown>;
    }
  }
  return out;
}
