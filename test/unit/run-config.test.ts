import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../src/lib/errors.ts';
import { decideMode } from '../../src/lib/mesh/mode.ts';
import { gkeOf } from '../../src/lib/mesh/start.ts';
import { type ConfigInput, resolveConfig } from '../../src/lib/run/config.ts';
import { appEnvironment } from '../../src/lib/run/launcher.ts';
import { parseMounts } from '../../src/lib/run/mounts.ts';
import { testContext } from '../support/context.ts';

const base: ConfigInput = { flags: {}, env: {}, meshEnv: {}, hostname: 'host-1.example', isRoot: false, cwd: '/work' };
const resolve = (over: Partial<ConfigInput>) => resolveConfig({ ...base, ...over });

describe('resolveConfig precedence: flag > env > mesh-env > derived default', () => {
  test('each level wins over the next, and says so', () => {
    const meshEnv = { PROJECT_ID: 'from-mesh' };
    assert.deepEqual(resolve({ meshEnv }).projectId, { value: 'from-mesh', source: 'mesh-env PROJECT_ID' });
    assert.deepEqual(resolve({ meshEnv, env: { PROJECT_ID: 'from-env' } }).projectId, {
      value: 'from-env',
      source: 'env PROJECT_ID',
    });
    assert.deepEqual(resolve({ meshEnv, env: { PROJECT_ID: 'e' }, flags: { projectId: 'f' } }).projectId, {
      value: 'f',
      source: 'flag --project',
    });
  });

  test('mesh-env cannot supply settings that belong to the workload', () => {
    const config = resolve({ meshEnv: { WORKLOAD_NAMESPACE: 'x', KUBECONFIG: '/x' } });
    assert.equal(config.namespace.value, 'default');
    assert.equal(config.kubeconfig.value, undefined);
  });

  test('namespace: the kubeconfig context, then default; name: K_SERVICE, then the namespace', () => {
    assert.deepEqual(resolve({ contextNamespace: 'team' }).namespace, { value: 'team', source: 'kubeconfig context' });
    assert.deepEqual(resolve({}).name, { value: 'default', source: 'derived from the namespace' });
    assert.deepEqual(resolve({ env: { K_SERVICE: 'fortio' } }).name, {
      value: 'fortio',
      source: 'derived from K_SERVICE',
    });
    // The version--name form names the workload by its second part (the original dropped it)
    assert.equal(resolve({ env: { K_SERVICE: 'v2--fortio' } }).name.value, 'fortio');
  });

  test('pod name from K_REVISION, else the short hostname', () => {
    assert.equal(resolve({}).podName.value, 'host-1');
    assert.equal(resolve({ env: { K_REVISION: 'fortio-00042-abc' } }).podName.value, 'fortio-00042-abc');
  });

  test('trust domain and istio-token audience follow the project, or OSS Istio', () => {
    const oss = resolve({});
    assert.equal(oss.trustDomain.value, 'cluster.local');
    assert.equal(oss.istioTokenAudience.value, 'istio-ca');
    const gcp = resolve({ env: { PROJECT_ID: 'p1' } });
    assert.equal(gcp.trustDomain.value, 'p1.svc.id.goog');
    assert.equal(gcp.istioTokenAudience.value, 'p1.svc.id.goog');
    assert.equal(resolve({ env: { PROJECT_ID: 'p1', OSS_ISTIO: '1' } }).istioTokenAudience.value, 'istio-ca');
  });

  test('base dir: / as root, the working directory otherwise, relative MESH_BASE_DIR against it', () => {
    assert.equal(resolve({ isRoot: true }).baseDir.value, '/');
    assert.equal(resolve({}).baseDir.value, '/work');
    assert.equal(resolve({ env: { MESH_BASE_DIR: 'mesh' } }).baseDir.value, '/work/mesh');
  });

  test('ports: bare numbers mean loopback, env wins over mesh-env, PORT_http is the app', () => {
    const config = resolve({
      env: { PORT_grpc: '8079', PORT_http: '9000', PORT_db: '[::1]:5432' },
      meshEnv: { PORT_grpc: '1', PORT_admin: '10.0.0.1:9901' },
    });
    assert.deepEqual(config.appAddress, { value: '127.0.0.1:9000', source: 'env PORT_http' });
    assert.deepEqual(Object.fromEntries(Object.entries(config.ports).map(([k, v]) => [k, v.value])), {
      admin: '10.0.0.1:9901',
      grpc: '127.0.0.1:8079',
      db: '[::1]:5432',
    });
    assert.equal(config.appPortWait.value, true);
    // - skips only the readiness wait: the app is still on 8080 (its PORT, the HBONE reverse proxy's target)
    const noWait = resolve({ env: { PORT_http: '-' } });
    assert.deepEqual(
      [noWait.appAddress.value, noWait.appPortWait],
      ['127.0.0.1:8080', { value: false, source: 'env PORT_http' }],
    );
  });

  test("the app is told PORT=8080 (Cloud Run's PORT is krun's HBONE port), or PORT_http's port", () => {
    const cloudRun = { PORT: '15009', K_SERVICE: 'web' };
    const port = (env: Record<string, string>) => appEnvironment(resolve({ env }), env, false).PORT;
    assert.equal(port(cloudRun), '8080');
    assert.equal(port({ ...cloudRun, PORT_http: '-' }), '8080');
    assert.equal(port({ ...cloudRun, PORT_http: '127.0.0.1:9000' }), '9000');
  });

  test('audit and recording: off by default, paths made absolute, input recording only when true', () => {
    const none = resolve({});
    assert.deepEqual(
      [none.auditFile.value, none.sshRecordDir.value, none.sshRecordInput.value, none.sshRecordMaxBytes.value],
      [undefined, undefined, false, 64 * 1024 * 1024],
    );
    const on = resolve({
      env: { KRUN_AUDIT_FILE: 'audit.jsonl', KRUN_SSH_RECORD_DIR: '/rec', KRUN_SSH_RECORD_INPUT: 'TRUE' },
      flags: { sshRecordMaxBytes: '4096' },
    });
    assert.deepEqual(on.auditFile, { value: '/work/audit.jsonl', source: 'env KRUN_AUDIT_FILE' });
    assert.deepEqual(
      [on.sshRecordDir.value, on.sshRecordInput.value, on.sshRecordMaxBytes],
      ['/rec', true, { value: 4096, source: 'flag --ssh-record-max-bytes' }],
    );
  });

  test('malformed values are usage errors naming the setting and its source', () => {
    const bad: [Partial<ConfigInput>, RegExp][] = [
      [{ env: { PORT_http: '70000' } }, /^env PORT_http is "70000": not a port or host:port$/],
      [{ env: { PORT_x: 'host' } }, /^env PORT_x is "host": not a port or host:port$/],
      [{ flags: { tokenExpiration: '60' } }, /^flag --token-expiration is "60": not a number of seconds ≥ 600$/],
      [{ env: { K8S_UID: 'root' } }, /^env K8S_UID is "root": not a numeric UID$/],
      [{ meshEnv: { KRUN_STARTUP_TIMEOUT: 'x' } }, /^mesh-env KRUN_STARTUP_TIMEOUT is "x"/],
      [{ env: { KRUN_SSH_RECORD_INPUT: 'yes' } }, /^env KRUN_SSH_RECORD_INPUT is "yes": not true or false$/],
      [{ env: { KRUN_SSH_RECORD_MAX_BYTES: '1k' } }, /^env KRUN_SSH_RECORD_MAX_BYTES is "1k": not a number of bytes/],
      [{ env: { KRUN_SSH_RECORD_MAX_BYTES: '100' } }, /^env KRUN_SSH_RECORD_MAX_BYTES is "100": not a number of bytes/],
    ];
    for (const [input, message] of bad)
      assert.throws(
        () => resolve(input),
        (e: Error) => e instanceof UsageError && message.test(e.message),
      );
  });
});

describe('parseMounts', () => {
  test('kinds, optional key, commas or newlines', () => {
    assert.deepEqual(parseMounts('secret:db:/etc/db,\nconfigmap:app:/etc/app:settings.json', 'env KRUN_MOUNTS'), [
      { kind: 'secret', name: 'db', path: '/etc/db' },
      { kind: 'configmap', name: 'app', path: '/etc/app', key: 'settings.json' },
    ]);
  });

  test('rejects what a Pod spec would reject', () => {
    for (const [text, why] of [
      ['secret:db:etc/db', 'needs an absolute path'],
      ['secret:DB:/x', 'needs a valid object name'],
      ['secret:db:/x:a:b', 'has too many ":" parts'],
      ['secret:db:/x:..data', 'names an invalid key'],
      ['pvc:db:/x', 'must start with secret: or configmap:'],
      ['secret:db:/../../etc/cron.d', 'must not contain ".." \\(it would leave the base directory\\)'],
    ] as const) {
      assert.throws(
        () => parseMounts(text, 'env KRUN_MOUNTS'),
        new RegExp(`"${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" ${why}`),
      );
    }
    assert.throws(() => parseMounts('secret:a:/x,configmap:b:/x', 'flag --mount'), /two mounts share the path \/x/);
  });
});

describe('OUTBOUND_IP_RANGES_EXCLUDE', () => {
  test('addresses and CIDRs of both families, from env or mesh-env; none by default', () => {
    assert.deepEqual(resolve({}).outboundIpRangesExclude, { value: [], source: 'unset' });
    assert.deepEqual(
      resolve({ env: { OUTBOUND_IP_RANGES_EXCLUDE: '169.254.169.254/32, 10.0.0.0/8,fd00::/8,fd00::1' } })
        .outboundIpRangesExclude,
      {
        value: ['169.254.169.254/32', '10.0.0.0/8', 'fd00::/8', 'fd00::1'],
        source: 'env OUTBOUND_IP_RANGES_EXCLUDE',
      },
    );
    assert.equal(
      resolve({ meshEnv: { OUTBOUND_IP_RANGES_EXCLUDE: '10.1.0.0/16' } }).outboundIpRangesExclude.source,
      'mesh-env OUTBOUND_IP_RANGES_EXCLUDE',
    );
  });

  test('anything else is a usage error naming the entry', () => {
    for (const bad of ['metadata.google.internal', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/1', '10.0.0.0/x']) {
      assert.throws(
        () => resolve({ env: { OUTBOUND_IP_RANGES_EXCLUDE: `10.2.0.0/16,${bad}` } }),
        (err) =>
          err instanceof UsageError &&
          err.message === `env OUTBOUND_IP_RANGES_EXCLUDE is "${bad}": not an IP address or CIDR`,
      );
    }
  });
});

describe('the GKE cluster URL (GKE_CLUSTER_URL, the STS audience)', () => {
  const log = testContext().log;
  const URL_OF = (p: string, l: string, n: string) =>
    `https://container.googleapis.com/v1/projects/${p}/locations/${l}/clusters/${n}`;

  test('named by the settings: derived from them; pilot-agent gets it with GCP_METADATA', () => {
    const config = resolve({
      env: { PROJECT_ID: 'p', PROJECT_NUMBER: '12', CLUSTER_NAME: 'c', CLUSTER_LOCATION: 'l' },
    });
    assert.deepEqual(config.clusterUrl, {
      value: URL_OF('p', 'l', 'c'),
      source: 'derived from the project, env CLUSTER_NAME and env CLUSTER_LOCATION',
    });
    assert.deepEqual(gkeOf(config, log), { clusterUrl: URL_OF('p', 'l', 'c'), gcpMetadata: 'p|12|c|l' });
  });

  test("a fleet member's GKE cluster in another project: its own URL, no number that is not its project's", () => {
    const url = URL_OF('cluster-proj', 'us-west1', 'private');
    const google = {
      project: 'fleet-proj',
      projectNumber: '34',
      cluster: { name: 'private', location: 'us-west1', url },
    };
    const config = resolve({ google });
    assert.deepEqual(config.clusterUrl, { value: url, source: 'GKE discovery' });
    assert.deepEqual(gkeOf(config, log), { clusterUrl: url, gcpMetadata: 'cluster-proj||private|us-west1' });
  });

  test('a fleet member that is not a GKE cluster: no URL, the reason as its source, no GKE variables', () => {
    const noUrl = 'Fleet membership edge is not a GKE cluster';
    const google = { project: 'p', cluster: { name: 'edge', location: 'global', url: undefined, noUrl } };
    const config = resolve({ google });
    assert.deepEqual(config.clusterUrl, { value: undefined, source: noUrl });
    assert.equal(gkeOf(config, log), undefined);
  });
});

describe('XDS_ADDR=- (the original contract: no pilot-agent)', () => {
  test('turns the mesh off, from env or mesh-env, and says why', () => {
    for (const over of [{ env: { XDS_ADDR: '-' } }, { meshEnv: { XDS_ADDR: '-' } }]) {
      const config = resolve(over);
      const source = `${'env' in over ? 'env' : 'mesh-env'} XDS_ADDR=-`;
      assert.deepEqual(config.meshMode, { value: 'none', source });
      assert.equal(config.xdsAddr.value, 'istiod.istio-system.svc:15012');
      const facts = { cluster: true, isRoot: true, interceptionMode: 'REDIRECT' as const };
      const tools = { hasPilotAgent: true, hasEnvoy: true, hasIptables: true };
      const decision = decideMode({ setting: config.meshMode.value, settingSource: source, ...facts, ...tools });
      assert.deepEqual(decision, { mode: 'none', reason: `asked for by ${source}` });
    }
    assert.equal(resolve({ env: { XDS_ADDR: '-', KRUN_MESH_MODE: 'auto' } }).meshMode.value, 'none');
  });

  test('an explicit mesh mode that needs the agent contradicts it', () => {
    assert.throws(
      () => resolve({ env: { XDS_ADDR: '-', KRUN_MESH_MODE: 'sidecar' } }),
      (err: unknown) =>
        err instanceof UsageError &&
        err.message === 'env KRUN_MESH_MODE is "sidecar": contradicts env XDS_ADDR=-, which turns the mesh off',
    );
  });
});
