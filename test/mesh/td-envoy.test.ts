// Traffic Director with Envoy (the original's default TD flavour): the exact bootstrap for fixed inputs, and
// `krun run` with MESH=td:… as root in a network namespace this test creates (only loopback: nothing leaves it; the
// metadata server's address is a local listener there). krun applies the capture with Debian's iptables, leaving
// 169.254.169.254 alone and sending DNS to 15053, then starts "Envoy" (the stand-in of support/fake-envoy.ts, which
// never dials Traffic Director) as UID/GID 1337 with that bootstrap, and the app once Envoy is live.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { TD_SERVER } from '../../src/lib/mesh/td.ts';
import { SYSTEM_ROOTS, TD_ENVOY_BOOTSTRAP, tdEnvoyBootstrap } from '../../src/lib/mesh/td-envoy.ts';
import { krun } from '../support/cli.ts';
import { ensureIptables } from '../support/fixtures/iptables.ts';
import { launcherCase } from '../support/launcher-case.ts';
import { krunCapture, savedNat } from './support/capture-rules.ts';
import { assertLogOrder } from './support/log-order.ts';
import { TestNetns } from './support/netns.ts';
import { TD_NODE } from './support/td-inputs.ts';

const INPUTS = {
  ...TD_NODE,
  rootCerts: '/etc/ssl/certs/ca-certificates.crt',
};

describe('Traffic Director Envoy bootstrap', () => {
  test('exact JSON for fixed inputs: the original template with its substitutions', () => {
    const trafficDirector = {
      api_type: 'GRPC',
      transport_api_version: 'V3',
      grpc_services: [
        {
          google_grpc: {
            target_uri: 'trafficdirector.googleapis.com:443',
            stat_prefix: 'trafficdirector',
            channel_credentials: {
              ssl_credentials: { root_certs: { filename: '/etc/ssl/certs/ca-certificates.crt' } },
            },
            call_credentials: [{ google_compute_engine: {} }],
            channel_args: {
              args: {
                'grpc.keepalive_time_ms': { int_value: 10000 },
                'grpc.keepalive_timeout_ms': { int_value: 20000 },
              },
            },
          },
        },
      ],
    };
    const ads = { ads: {}, resource_api_version: 'V3' };
    assert.deepEqual(tdEnvoyBootstrap(INPUTS), {
      node: {
        id: 'projects/123456789012/networks/scope:edge/nodes/52fdfc07-2182-454f-963f-5f0f9a621d72~10.9.8.7',
        cluster: 'cluster',
        locality: { zone: 'us-central1-c' },
        metadata: {
          TRAFFICDIRECTOR_INTERCEPTION_PORT: '15001',
          TRAFFICDIRECTOR_ENABLE_TRACING: 'false',
          TRAFFICDIRECTOR_ACCESS_LOG_PATH: '',
          TRAFFICDIRECTOR_INBOUND_BACKEND_PORTS: '',
        },
      },
      dynamic_resources: { ads_config: trafficDirector, cds_config: ads, lds_config: ads },
      cluster_manager: { load_stats_config: trafficDirector },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 15000 } } },
      layered_runtime: {
        layers: [{ name: 'rtds_layer', rtds_layer: { name: 'traffic_director_runtime', rtds_config: ads } }],
      },
    });
  });
});

describe('krun run with MESH=td:… and Envoy, in a network namespace', () => {
  const APP_IP = '10.9.0.1';
  const NAMESERVER = '10.9.0.53';
  const METADATA = '169.254.169.254';
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  test('capture without the metadata server, DNS to 15053, Envoy as UID/GID 1337 with the bootstrap, then the app', async () => {
    // Given a namespace with a nameserver address, the metadata server's address and a server the proxy may reach
    const iptables = await ensureIptables((line) => process.stderr.write(`[iptables fixture] ${line}\n`));
    const work = await mkdtemp(join(tmpdir(), 'krun-td-envoy-'));
    await chmod(work, 0o755); // Envoy (UID 1337) runs the stand-in from here
    const netns = await TestNetns.create(`krun-tdenvoy-${process.pid}`, [APP_IP, NAMESERVER, METADATA]);
    cleanups.push(async () => {
      await netns.destroy();
      await rm(work, { recursive: true, force: true });
    });
    await netns.resolvConf(`nameserver ${NAMESERVER}\n`);
    const support = (f: string) => new URL(`./support/${f}`, import.meta.url).pathname;
    await netns.serve([
      process.execPath,
      support('netns-listeners.ts'),
      `tcp:${APP_IP}:8080:direct 8080`,
      `tcp:${METADATA}:80:metadata server`,
    ]);
    const conntrack = join(work, 'conntrack.sock');
    await netns.serve([process.execPath, support('conntrack-server.ts'), conntrack]);
    const envoy = join(work, 'envoy');
    await writeFile(envoy, `#!/bin/sh\nexec ${process.execPath} ${support('fake-envoy.ts')} "$@"\n`);
    await chmod(envoy, 0o755);
    const { dir, env } = await launcherCase(work, {
      ...iptables.env,
      MESH: 'td:projects=123456789012&scopes=edge',
      KRUN_ENVOY: envoy,
      KRUN_IPTABLES_RESTORE: iptables.restore,
      FAKE_ENVOY_CONNTRACK: conntrack,
      FAKE_ENVOY_DIAL: `${APP_IP}:8080`,
    });
    await chmod(dir, 0o755);
    const out = (f: string) => join(dir, f);
    // When krun runs as root there, an app that dials out, asks the metadata server and sends a DNS query
    const app = [
      'echo "$KRUN_MESH_MODE" "$(env | grep -c ^GRPC_XDS_BOOTSTRAP=)"',
      `bash -c 'exec 3<>/dev/tcp/${APP_IP}/8080 && cat <&3' > ${out('seen-8080')}`,
      `bash -c 'exec 3<>/dev/tcp/${METADATA}/80 && cat <&3' > ${out('seen-metadata')}`,
      `bash -c 'exec 3<>/dev/udp/${NAMESERVER}/53 && printf query >&3 && head -n 1 <&3' > ${out('seen-dns')}`,
      `curl -sS http://127.0.0.1:15000/fake/report > ${out('seen-envoy')}`,
    ].join('; ');
    const r = await krun(['run', '--', 'sh', '-c', app], { prefix: netns.wrap([]), cleanEnv: env });
    // Then krun chose Envoy, captured, started Envoy and the app once Envoy was live, and stopped Envoy last
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'td 0\n', 'KRUN_MESH_MODE=td and no GRPC_XDS_BOOTSTRAP');
    assert.match(
      r.stderr,
      /"message":"mesh mode td: Traffic Director \(MESH=td:…\) with Envoy","component":"mesh","reason":"root, iptables and Envoy are available"/,
    );
    assertLogOrder(r.stderr, [
      'applied the outbound capture (iptables)',
      'Envoy started',
      'Envoy ready',
      'app started',
      'app exited',
      'Envoy stopped',
    ]);
    // And the kernel holds the capture with the metadata server (169.254.169.254/32, fd20:ce::254/128) excluded and
    // DNS to the nameserver sent to 15053
    const saved = (await netns.exec([iptables.save, '-t', 'nat'], [], iptables.env)).stdout;
    const options = krunCapture(NAMESERVER, [], [`${METADATA}/32`, 'fd20:ce::254/128']);
    const expected = savedNat(options);
    assert.deepEqual(
      saved.split('\n').filter((l) => l && !l.startsWith('#')),
      expected,
    );
    assert.ok(expected.includes(`-A ISTIO_OUTPUT -d ${METADATA}/32 -j RETURN`));
    const saved6 = (await netns.exec([iptables.save6, '-t', 'nat'], [], iptables.env)).stdout;
    const expected6 = savedNat(options, 6);
    assert.deepEqual(
      saved6.split('\n').filter((l) => l && !l.startsWith('#')),
      expected6,
    );
    assert.ok(expected6.includes('-A ISTIO_OUTPUT -d fd20:ce::254/128 -j RETURN'));
    // And the app's connection landed on Envoy with its destination, the metadata server was reached directly, DNS
    // reached Envoy's 15053, and Envoy's own connection (UID 1337) was not captured
    assert.equal(await readFile(out('seen-8080'), 'utf8'), `envoy ${APP_IP}:8080\n`);
    assert.equal(await readFile(out('seen-metadata'), 'utf8'), 'metadata server\n');
    assert.equal(await readFile(out('seen-dns'), 'utf8'), 'envoy dns\n');
    const seen = JSON.parse(await readFile(out('seen-envoy'), 'utf8'));
    assert.deepEqual([seen.uid, seen.gid, seen.groups, seen.dialed], [1337, 1337, [1337], 'direct 8080']);
    // And Envoy read krun's bootstrap: the template's, for this project, scope and the zone off Google Cloud
    const path = out(TD_ENVOY_BOOTSTRAP);
    assert.equal(seen.bootstrap, path);
    assert.equal((await stat(path)).mode & 0o777, 0o644);
    const written = JSON.parse(await readFile(path, 'utf8'));
    assert.equal(seen.node, written.node.id);
    const nodeId = (written.node.id as string).split('/nodes/')[1] ?? '';
    assert.match(nodeId, /^[0-9a-f-]{36}~\S+$/);
    assert.deepEqual(
      written,
      tdEnvoyBootstrap({
        serverUri: TD_SERVER,
        projectNumber: '123456789012',
        network: 'scope:edge',
        nodeId,
        zone: 'cloud-run-cluster',
        rootCerts: SYSTEM_ROOTS,
      }),
    );
  });
});
