// Every setting of `krun run`: its environment variable (the container way), its flag, and whether the
// istio-system/mesh-env ConfigMap may supply it. One table drives parsing, --print-config and the README.

export type SettingKey =
  | 'namespace'
  | 'name'
  | 'serviceAccount'
  | 'projectId'
  | 'projectNumber'
  | 'clusterName'
  | 'clusterLocation'
  | 'trustDomain'
  | 'kubeconfig'
  | 'context'
  | 'baseDir'
  | 'appPort'
  | 'startupProbeHttp'
  | 'startupProbeTcp'
  | 'startupTimeout'
  | 'uid'
  | 'mounts'
  | 'istioTokenAudience'
  | 'googleTokens'
  | 'dataplaneServiceAccount'
  | 'caPool'
  | 'caKeyType'
  | 'tokenExpiration'
  | 'terminationGrace'
  | 'resyncInterval'
  | 'hbonePort'
  | 'hboneTlsCert'
  | 'hboneTlsKey'
  | 'hboneJwtIssuer'
  | 'hboneJwksUri'
  | 'hboneJwtAudience'
  | 'hbonePrincipals'
  | 'sshPort'
  | 'sshAuth'
  | 'sshAuthorizedKeys'
  | 'sshHostKey'
  | 'sshResyncInterval'
  | 'sshRecordDir'
  | 'sshRecordInput'
  | 'sshRecordMaxBytes'
  | 'auditFile'
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
  | 'envoyLogLevel';

export interface SettingSpec {
  readonly key: SettingKey;
  readonly env: string;
  /** The long flag of `krun run` (without --). */
  readonly flag: string;
  readonly summary: string;
  /** istio-system/mesh-env may supply it (under the same name as the env var). */
  readonly meshEnv?: boolean;
}

export const SETTINGS: readonly SettingSpec[] = [
  { key: 'namespace', env: 'WORKLOAD_NAMESPACE', flag: 'namespace', summary: 'Kubernetes namespace of the workload' },
  { key: 'name', env: 'WORKLOAD_NAME', flag: 'name', summary: 'Workload name (app label, canonical service)' },
  {
    key: 'serviceAccount',
    env: 'WORKLOAD_SERVICE_ACCOUNT',
    flag: 'service-account',
    summary: 'Kubernetes ServiceAccount whose tokens the workload gets',
  },
  {
    key: 'projectId',
    env: 'PROJECT_ID',
    flag: 'project',
    summary: 'Google Cloud project of the cluster',
    meshEnv: true,
  },
  {
    key: 'projectNumber',
    env: 'PROJECT_NUMBER',
    flag: 'project-number',
    summary: 'Numeric id of that project',
    meshEnv: true,
  },
  { key: 'clusterName', env: 'CLUSTER_NAME', flag: 'cluster', summary: 'Cluster name', meshEnv: true },
  {
    key: 'clusterLocation',
    env: 'CLUSTER_LOCATION',
    flag: 'cluster-location',
    summary: 'Cluster region or zone',
    meshEnv: true,
  },
  {
    key: 'trustDomain',
    env: 'TRUST_DOMAIN',
    flag: 'trust-domain',
    summary: 'Mesh trust domain (SPIFFE)',
    meshEnv: true,
  },
  { key: 'kubeconfig', env: 'KUBECONFIG', flag: 'kubeconfig', summary: 'Kubeconfig file(s), colon-separated' },
  { key: 'context', env: 'KRUN_CONTEXT', flag: 'context', summary: 'Kubeconfig context to use' },
  {
    key: 'baseDir',
    env: 'MESH_BASE_DIR',
    flag: 'base-dir',
    summary: 'Root of the Pod file tree (/ as root, the working directory otherwise)',
  },
  {
    key: 'appPort',
    env: 'PORT_http',
    flag: 'app-port',
    summary: "The app's port (or host:port); - skips the readiness wait",
    meshEnv: true,
  },
  {
    key: 'startupProbeHttp',
    env: 'startupProbe.http',
    flag: 'startup-probe-http',
    summary: 'URL that answers 200 once the app is ready',
    meshEnv: true,
  },
  {
    key: 'startupProbeTcp',
    env: 'startupProbe.tcp',
    flag: 'startup-probe-tcp',
    summary: 'host:port that accepts connections once the app is ready',
    meshEnv: true,
  },
  {
    key: 'startupTimeout',
    env: 'KRUN_STARTUP_TIMEOUT',
    flag: 'startup-timeout',
    summary: 'Seconds to wait for the app to become ready',
    meshEnv: true,
  },
  { key: 'uid', env: 'K8S_UID', flag: 'uid', summary: 'Run the app as this UID (when krun runs as root)' },
  {
    key: 'mounts',
    env: 'KRUN_MOUNTS',
    flag: 'mount',
    summary: 'Secrets and ConfigMaps to mount: secret:NAME:/path[:key],configmap:NAME:/path[:key]',
  },
  {
    key: 'istioTokenAudience',
    env: 'KRUN_ISTIO_TOKEN_AUDIENCE',
    flag: 'istio-token-audience',
    summary: 'Audience of var/run/secrets/tokens/istio-token',
    meshEnv: true,
  },
  {
    key: 'googleTokens',
    env: 'KRUN_GOOGLE_TOKENS',
    flag: 'google-tokens',
    summary: 'Managed-mesh token chain: off, federated (STS) or dataplane (STS, then the data-plane account)',
    meshEnv: true,
  },
  {
    key: 'dataplaneServiceAccount',
    env: 'KRUN_DATAPLANE_SERVICE_ACCOUNT',
    flag: 'dataplane-service-account',
    summary: 'Google service account impersonated with the federated token (KRUN_GOOGLE_TOKENS=dataplane)',
    meshEnv: true,
  },
  {
    key: 'caPool',
    env: 'CA_POOL',
    flag: 'ca-pool',
    summary: 'Certificate Authority Service pool for the workload certificate: projects/P/locations/L/caPools/NAME',
    meshEnv: true,
  },
  {
    key: 'caKeyType',
    env: 'KRUN_CA_KEY_TYPE',
    flag: 'ca-key-type',
    summary: 'Key of the CA_POOL workload certificate: ec (P-256) or rsa (2048 bits)',
    meshEnv: true,
  },
  {
    key: 'tokenExpiration',
    env: 'KRUN_TOKEN_EXPIRATION',
    flag: 'token-expiration',
    summary: 'Requested token lifetime in seconds (at least 600)',
  },
  {
    key: 'terminationGrace',
    env: 'KRUN_TERMINATION_GRACE',
    flag: 'termination-grace',
    summary: 'Seconds between SIGTERM and SIGKILL for the app',
  },
  {
    key: 'resyncInterval',
    env: 'KRUN_RESYNC_INTERVAL',
    flag: 'resync-interval',
    summary: 'Seconds between re-reads of mounts and the istiod root',
  },
  {
    key: 'hbonePort',
    env: 'KRUN_HBONE_PORT',
    flag: 'hbone-port',
    summary: 'HBONE tunnel server port (all interfaces) or host:port; - turns it off',
  },
  {
    key: 'hboneTlsCert',
    env: 'KRUN_HBONE_TLS_CERT',
    flag: 'hbone-tls-cert',
    summary: 'Serve HBONE over TLS with this certificate chain (PEM file)',
  },
  {
    key: 'hboneTlsKey',
    env: 'KRUN_HBONE_TLS_KEY',
    flag: 'hbone-tls-key',
    summary: 'Private key (PEM file) of that certificate',
  },
  {
    key: 'hboneJwtIssuer',
    env: 'KRUN_HBONE_JWT_ISSUER',
    flag: 'hbone-jwt-issuer',
    summary: 'Require a bearer JWT from this issuer on HBONE',
  },
  { key: 'hboneJwksUri', env: 'KRUN_HBONE_JWKS_URI', flag: 'hbone-jwks-uri', summary: "The issuer's JWKS URL" },
  {
    key: 'hboneJwtAudience',
    env: 'KRUN_HBONE_JWT_AUDIENCE',
    flag: 'hbone-jwt-audience',
    summary: 'Audience the JWT must name',
  },
  {
    key: 'hbonePrincipals',
    env: 'KRUN_HBONE_PRINCIPALS',
    flag: 'hbone-principals',
    summary: 'Comma-separated emails or subjects allowed (default: any valid token)',
  },
  {
    key: 'sshPort',
    env: 'KRUN_SSH_PORT',
    flag: 'ssh-port',
    summary: 'SSH debug server port (127.0.0.1 only, reached through HBONE); - turns it off',
  },
  {
    key: 'sshAuth',
    env: 'SSH_AUTH',
    flag: 'ssh-auth',
    summary: 'authorized_keys line(s) allowed to log in to the SSH debug server',
  },
  {
    key: 'sshAuthorizedKeys',
    env: 'KRUN_SSH_AUTHORIZED_KEYS',
    flag: 'ssh-authorized-keys',
    summary: 'authorized_keys file for the SSH debug server (keys and cert-authority lines)',
  },
  {
    key: 'sshHostKey',
    env: 'KRUN_SSH_HOST_KEY',
    flag: 'ssh-host-key',
    summary: 'Private host key file of the SSH debug server',
  },
  {
    key: 'sshResyncInterval',
    env: 'KRUN_SSH_RESYNC_INTERVAL',
    flag: 'ssh-resync-interval',
    summary: 'Seconds between re-reads of the authorized keys in the sshdebug Secret',
  },
  {
    key: 'sshRecordDir',
    env: 'KRUN_SSH_RECORD_DIR',
    flag: 'ssh-record-dir',
    summary: 'Record SSH terminal sessions (asciinema v2 files, mode 0600) here',
  },
  {
    key: 'sshRecordInput',
    env: 'KRUN_SSH_RECORD_INPUT',
    flag: 'ssh-record-input',
    summary: 'true records what was typed too (passwords included)',
  },
  {
    key: 'sshRecordMaxBytes',
    env: 'KRUN_SSH_RECORD_MAX_BYTES',
    flag: 'ssh-record-max-bytes',
    summary: 'Size cap of one recording; past it a truncation marker ends it',
  },
  {
    key: 'auditFile',
    env: 'KRUN_AUDIT_FILE',
    flag: 'audit-file',
    summary: 'Also append audit events (JSON lines) to this file, mode 0600',
  },
  {
    key: 'meshMode',
    env: 'KRUN_MESH_MODE',
    flag: 'mesh-mode',
    summary: 'auto, sidecar (iptables capture), whitebox, proxyless or none',
    meshEnv: true,
  },
  {
    key: 'xdsAddr',
    env: 'XDS_ADDR',
    flag: 'xds-addr',
    summary: 'Discovery (xDS) address, host:port; - turns the mesh off',
    meshEnv: true,
  },
  {
    key: 'caAddr',
    env: 'CA_ADDR',
    flag: 'ca-addr',
    summary: 'Certificate authority address, host:port',
    meshEnv: true,
  },
  {
    key: 'istiodSan',
    env: 'ISTIOD_SAN',
    flag: 'istiod-san',
    summary: "Name expected in istiod's serving certificate",
    meshEnv: true,
  },
  {
    key: 'istiodRootCert',
    env: 'CAROOT_ISTIOD',
    flag: 'istiod-root-cert',
    summary: 'istiod root certificate (PEM) when ConfigMap istio-ca-root-cert is not readable',
    meshEnv: true,
  },
  {
    key: 'clusterId',
    env: 'ISTIO_META_CLUSTER_ID',
    flag: 'cluster-id',
    summary: "Istio cluster id (must match istiod's)",
    meshEnv: true,
  },
  { key: 'meshId', env: 'ISTIO_META_MESH_ID', flag: 'mesh-id', summary: 'Istio mesh id', meshEnv: true },
  {
    key: 'interceptionMode',
    env: 'ISTIO_META_INTERCEPTION_MODE',
    flag: 'interception-mode',
    summary: 'REDIRECT (iptables capture) or NONE (whitebox)',
    meshEnv: true,
  },
  {
    key: 'outboundIpRangesInclude',
    env: 'OUTBOUND_IP_RANGES_INCLUDE',
    flag: 'outbound-ip-ranges-include',
    summary: 'Comma-separated CIDRs captured to the sidecar, or *',
    meshEnv: true,
  },
  {
    key: 'outboundIpRangesExclude',
    env: 'OUTBOUND_IP_RANGES_EXCLUDE',
    flag: 'outbound-ip-ranges-exclude',
    summary: 'Comma-separated CIDRs never captured',
    meshEnv: true,
  },
  {
    key: 'outboundPortsExclude',
    env: 'OUTBOUND_PORTS_EXCLUDE',
    flag: 'outbound-ports-exclude',
    summary: 'Comma-separated outbound ports never captured',
    meshEnv: true,
  },
  { key: 'pilotAgent', env: 'KRUN_PILOT_AGENT', flag: 'pilot-agent', summary: 'Path of the pilot-agent binary' },
  { key: 'envoy', env: 'KRUN_ENVOY', flag: 'envoy', summary: 'Path of the Envoy binary' },
  {
    key: 'iptablesRestore',
    env: 'KRUN_IPTABLES_RESTORE',
    flag: 'iptables-restore',
    summary: 'iptables-restore for the capture (path or name on PATH)',
  },
  {
    key: 'meshStatusPort',
    env: 'KRUN_MESH_STATUS_PORT',
    flag: 'mesh-status-port',
    summary: "pilot-agent's status port (/healthz/ready)",
  },
  {
    key: 'agentLogLevel',
    env: 'XDS_AGENT_DEBUG',
    flag: 'agent-log-level',
    summary: "pilot-agent's --log_output_level, e.g. dns:debug,xdsproxy:debug",
    meshEnv: true,
  },
  {
    key: 'envoyLogLevel',
    env: 'ENVOY_LOG_LEVEL',
    flag: 'envoy-log-level',
    summary: "Envoy's log level (pilot-agent's --proxyLogLevel), e.g. debug",
  },
];

export const MESH_ENV_NAMESPACE = 'istio-system';
export const MESH_ENV_NAME = 'mesh-env';

/** Prefix of the named-port variables: PORT_<name>=[host:]port makes /_hbone/<name> reach that target. */
export const PORT_PREFIX = 'PORT_';
