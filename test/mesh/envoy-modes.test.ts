// `krun run` as root with Envoy, end to end inside network namespaces this test creates (only loopback: nothing
// leaves them): the real apiserver and istiod are reached through Unix sockets (the filesystem is shared), and the
// real pilot-agent starts "Envoy": a stand-in (support/fake-envoy.ts; the machine has no Envoy) that opens the ADS
// stream through the agent and serves the admin stats its readiness probe reads, the 15001 listener and, in
// whitebox mode, the 15007 HTTP proxy. Sidecar mode: krun applies the capture with Debian's iptables before the
// agent, the app's outbound TCP lands on 15001 and its DNS goes through pilot-agent's real DNS proxy. Whitebox mode:
// no capture, and the app's HTTP client goes through the proxy port.
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { krun } from '../support/cli.ts';
import { rootCertOf } from '../support/control-plane/istio.ts';
import { controlPlane } from '../support/control-plane/shared.ts';
import { ensureIptables } from '../support/fixtures/iptables.ts';
import { TestKube } from '../support/kube.ts';
import { krunCapture, savedNat } from './support/capture-rules.ts';
import { assertLogOrder } from './support/log-order.ts';
import { TestNetns } from './support/netns.ts';
import { meshWorkload } from './support/workload.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const iptables = await ensureIptables((line) => process.stderr.write(`[iptables fixture] ${line}\n`));
const work = await mkdtemp(join(tmpdir(), 'krun-envoy-'));
// In sidecar mode the proxy runs as UID 1337: the base directories, the stand-in and pilot-agent (the fixtures cache
// is under root's home) must be within its reach, as in a proxy image.
await chmod(work, 0o755);
const pilotAgent = join(work, 'pilot-agent');
await copyFile(plane.fixtures.pilotAgent, pilotAgent);
await chmod(pilotAgent, 0o755);
const APP_IP = '10.9.0.1';
const NAMESERVER = '10.9.0.53';
const NAMESERVER6 = 'fd00:9::53';
const RESOLV_CONF = `search svc.cluster.local\nnameserver ${NAMESERVER}\nnameserver ${NAMESERVER6}\n`;
const support = (f: string) => new URL(`./support/${f}`, import.meta.url).pathname;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await rm(work, { recursive: true, force: true });
});

/**
 * A Node one-liner printing the IPv4 addresses of name, resolved with the nameservers of /etc/resolv.conf, or with
 * the one given.
 */
const resolve = (name: string, server?: string) =>
  `const r = new (require('node:dns').promises.Resolver)(); ${server ? `r.setServers(['${server}']); ` : ''}` +
  `r.resolve4('${name}').then((a) => console.log(a.join(',')), (e) => console.log(e.code))`;

/**
 * A namespace where the control plane answers on its usual 127.0.0.1 ports, with its own nameserver, the listeners
 * given (netns-listeners.ts specs), and the Envoy stand-in with the bootstrap template it reads.
 */
async function envoyWorld(name: string, listeners: readonly string[]) {
  const netns = await TestNetns.create(`krun-${name}-${process.pid}`, [APP_IP, NAMESERVER, NAMESERVER6]);
  const bridges: Server[] = [];
  cleanups.push(async () => {
    await netns.destroy();
    for (const b of bridges) b.close();
  });
  /** Makes 127.0.0.1:port inside the namespace reach 127.0.0.1:port of the host namespace. */
  const bridge = async (port: number) => {
    const socket = join(work, `${name}-${port}.sock`);
    const server = createServer((inbound) => {
      const outbound = connect(port, '127.0.0.1');
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    await new Promise<void>((ok) => server.listen(socket, ok));
    bridges.push(server);
    await netns.serve([process.execPath, support('tcp-to-unix.ts'), String(port), socket]);
  };
  await bridge(Number(new URL(plane.access.server).port));
  await bridge(Number(plane.istiod.secureGrpcAddress.split(':').at(-1)));
  await netns.resolvConf(RESOLV_CONF);
  await netns.serve([process.execPath, support('netns-listeners.ts'), ...listeners]);
  const conntrack = join(work, `${name}-conntrack.sock`);
  await netns.serve([process.execPath, support('conntrack-server.ts'), conntrack]);
  const envoy = join(work, `${name}-envoy`);
  await writeFile(envoy, `#!/bin/sh\nexec ${process.execPath} ${support('fake-envoy.ts')} "$@"\n`);
  await chmod(envoy, 0o755);
  const template = join(work, `${name}-envoy_bootstrap_tmpl.json`);
  // Enough of Istio's bootstrap template for the stand-in: the node, the agent's xDS socket, the admin port.
  await writeFile(
    template,
    '{"node": {"id": "{{ .nodeID }}", "cluster": "{{ .cluster }}", "metadata": {{ .meta_json_str }}}, ' +
      '"xds": "{{ .config.ConfigPath }}/XDS", "admin_port": {{ .config.ProxyAdminPort }}}\n',
  );
  const w = await meshWorkload(plane, kube, work);
  await chmod(w.dir, 0o755);
  await rootCertOf(kube, w.ns);
  const env = {
    ...w.env,
    KRUN_PILOT_AGENT: pilotAgent,
    FAKE_ENVOY_CONNTRACK: conntrack,
    ...iptables.env,
    KRUN_IPTABLES_RESTORE: iptables.restore,
    KRUN_ENVOY: envoy,
    ISTIO_BOOTSTRAP: template,
  };
  /** `krun run` as root in the namespace. */
  const run = (args: readonly string[], extra: Record<string, string> = {}) =>
    krun(['run', ...args], { prefix: netns.wrap([]), cleanEnv: { ...env, ...extra } });
  return { netns, ns: w.ns, out: (f: string) => join(w.dir, f), run };
}

describe('krun run with Envoy, in a network namespace', () => {
  test('sidecar: capture before the agent, the agent (UID/GID 1337) before the app; the app’s TCP and DNS are captured, the proxy’s are not', async () => {
    // Given the control plane reachable in the namespace, its own nameserver, and what answers there
    const world = await envoyWorld('sidecar', [
      `tcp:${APP_IP}:5432:direct 5432`,
      `tcp:${APP_IP}:8080:direct 8080`,
      `dns:${NAMESERVER}:53:10.9.9.9`,
      // The same answer: pilot-agent may ask both nameservers at once and take the first answer.
      `dns:[${NAMESERVER6}]:53:10.9.9.9`,
    ]);
    const { netns, out } = world;
    const web = await kube.post<{ spec: { clusterIP: string } }>(`/api/v1/namespaces/${world.ns}/services`, {
      metadata: { name: 'web' },
      spec: { ports: [{ name: 'http', port: 80 }] },
    });
    // When krun runs, as root in the namespace, an app that dials out and resolves names
    const app = [
      `bash -c 'exec 3<>/dev/tcp/${APP_IP}/8080 && cat <&3' > ${out('seen-8080')}`,
      `bash -c 'exec 3<>/dev/tcp/${APP_IP}/5432 && cat <&3' > ${out('seen-5432')}`,
      `${process.execPath} -e "${resolve('db.example.test')}" > ${out('seen-dns-upstream')}`,
      `${process.execPath} -e "${resolve(`web.${world.ns}.svc.cluster.local`)}" > ${out('seen-dns-mesh')}`,
      `${process.execPath} -e "${resolve(`web.${world.ns}.svc.cluster.local`, NAMESERVER6)}" > ${out('seen-dns6-mesh')}`,
      `cat /etc/resolv.conf > ${out('seen-resolv.conf')}`,
      `curl -sS http://127.0.0.1:15000/fake/report > ${out('seen-envoy')}`,
      `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline | grep -q '^${pilotAgent} proxy' && grep -E '^(Uid|Gid|Groups):' $p/status; done > ${out('seen-agent')}`,
      `id -u > ${out('seen-app-uid')}`,
    ].join('; ');
    const r = await world.run(['--', 'sh', '-c', app], {
      OUTBOUND_PORTS_EXCLUDE: '5432',
      FAKE_ENVOY_DIAL: `${APP_IP}:8080`,
    });
    // Then krun chose sidecar mode, captured before starting the agent, and started the app once the agent was ready
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /"message":"mesh mode sidecar: root, iptables, pilot-agent and Envoy are available"/);
    assertLogOrder(r.stderr, [
      'applied the outbound capture (iptables)',
      'pilot-agent started',
      'pilot-agent ready',
      'app started',
    ]);
    // And pilot-agent and Envoy ran as UID/GID 1337 without other groups, the app as krun's user (root)
    assert.equal(
      await readFile(out('seen-agent'), 'utf8'),
      'Uid:\t1337\t1337\t1337\t1337\nGid:\t1337\t1337\t1337\t1337\nGroups:\t \n',
    );
    const envoy = JSON.parse(await readFile(out('seen-envoy'), 'utf8'));
    assert.deepEqual([envoy.uid, envoy.gid, envoy.groups], [1337, 1337, [1337]]);
    assert.equal(await readFile(out('seen-app-uid'), 'utf8'), '0\n');
    // And the app's connection landed on 15001 with its original destination, while the same destination dialled by
    // the proxy (UID 1337) was reached directly; the excluded port went direct
    assert.equal(await readFile(out('seen-8080'), 'utf8'), `envoy ${APP_IP}:8080\n`);
    assert.equal(envoy.dialed, 'direct 8080');
    assert.equal(await readFile(out('seen-5432'), 'utf8'), 'direct 5432\n');
    // And its DNS queries were redirected to pilot-agent's DNS proxy, which answered a Service from istiod's name
    // table (the nameserver would have said 10.9.9.9) and asked the nameserver for the rest
    assert.equal(await readFile(out('seen-dns-mesh'), 'utf8'), `${web.spec.clusterIP}\n`);
    assert.equal(await readFile(out('seen-dns-upstream'), 'utf8'), '10.9.9.9\n');
    // And a query to the IPv6 nameserver too (ip6tables to [::1]:15053, where the agent listens because resolv.conf
    // lists an IPv6 nameserver)
    assert.equal(await readFile(out('seen-dns6-mesh'), 'utf8'), `${web.spec.clusterIP}\n`);
    const conntrack = (await netns.exec(['cat', '/proc/net/nf_conntrack'])).stdout;
    assert.match(
      conntrack,
      new RegExp(
        `udp .* dst=${NAMESERVER.replaceAll('.', '\\.')} sport=\\d+ dport=53 src=127\\.0\\.0\\.1 dst=\\S+ sport=15053 `,
      ),
      conntrack,
    );
    // And what the proxy writes is its own with tight modes; it reads istio-token by its group
    const owned = async (f: string) => {
      const s = await stat(out(f));
      return `${s.uid}:${s.gid} ${(s.mode & 0o777).toString(8)}`;
    };
    assert.equal(await owned('etc/istio/proxy'), '1337:1337 755');
    assert.equal(await owned('var/lib/istio/envoy'), '1337:1337 700');
    assert.equal(await owned('var/run/secrets/istio.io'), '1337:1337 755');
    assert.equal(await owned('var/run/secrets/istio.io/key.pem'), '1337:1337 600');
    assert.equal(await owned('var/run/secrets/tokens/istio-token'), '0:1337 640');
    assert.equal(await owned('var/run/secrets/istio/root-cert.pem'), '0:0 644');
    // And resolv.conf was left as it was, and the kernel holds exactly the rules krun applied
    assert.equal(await readFile(out('seen-resolv.conf'), 'utf8'), RESOLV_CONF);
    const saved = (await netns.exec([iptables.save, '-t', 'nat'], [], iptables.env)).stdout;
    assert.deepEqual(
      saved.split('\n').filter((l) => l && !l.startsWith('#')),
      savedNat(krunCapture([NAMESERVER, NAMESERVER6], [5432])),
    );
    const saved6 = (await netns.exec([iptables.save6, '-t', 'nat'], [], iptables.env)).stdout;
    assert.deepEqual(
      saved6.split('\n').filter((l) => l && !l.startsWith('#')),
      savedNat(krunCapture([NAMESERVER, NAMESERVER6], [5432]), 6),
    );
  });

  test('whitebox: no capture, the app’s HTTP goes through the proxy port and loopback does not', async () => {
    // Given the same world, where a loopback server answers on 8080
    const world = await envoyWorld('whitebox', ['tcp:127.0.0.1:8080:loopback server']);
    const { netns, out } = world;
    // When krun runs with interception off, an app that makes HTTP requests with curl (which honours http_proxy)
    const app = [
      `curl -sS http://web.${world.ns}.svc.cluster.local/hello > ${out('seen-mesh')}`,
      `curl -sS --http0.9 http://127.0.0.1:8080/ > ${out('seen-loopback')}`,
      `bash -c 'exec 3<>/dev/tcp/${APP_IP}/8080 && cat <&3' > ${out('seen-tcp')} 2>&1 || echo refused > ${out('seen-tcp')}`,
      `env | grep -i _proxy= | sort > ${out('seen-env')}`,
    ].join('; ');
    const r = await world.run(['--', 'sh', '-c', app], { ISTIO_META_INTERCEPTION_MODE: 'NONE' });
    // Then krun chose whitebox mode, applied no capture, and started the app once the agent was ready
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /"message":"mesh mode whitebox: ISTIO_META_INTERCEPTION_MODE is NONE"/);
    assert.ok(!r.stderr.includes('applied the outbound capture'), r.stderr);
    assertLogOrder(r.stderr, ['pilot-agent started', 'pilot-agent ready', 'app started']);
    const saved = (await netns.exec([iptables.save, '-t', 'nat'], [], iptables.env)).stdout;
    assert.deepEqual(
      saved.split('\n').filter((l) => l.startsWith('-A')),
      [],
      'no nat rules',
    );
    // And the app's HTTP went to the proxy port (absolute-form request), loopback went direct, raw TCP was not captured
    assert.equal(
      await readFile(out('seen-mesh'), 'utf8'),
      `envoy proxied GET http://web.${world.ns}.svc.cluster.local/hello\n`,
    );
    assert.equal(await readFile(out('seen-loopback'), 'utf8'), 'loopback server\n');
    assert.equal(await readFile(out('seen-tcp'), 'utf8'), 'refused\n');
    assert.equal(
      await readFile(out('seen-env'), 'utf8'),
      [
        'HTTP_PROXY=http://127.0.0.1:15007',
        'NO_PROXY=localhost,127.0.0.1,::1',
        'http_proxy=http://127.0.0.1:15007',
        'no_proxy=localhost,127.0.0.1,::1',
        '',
      ].join('\n'),
    );
  });

  test('an Envoy that never gets its config: timeout with the agent’s log tail and Envoy’s config dump', async () => {
    const world = await envoyWorld('stuck', []);
    const r = await world.run(['--', 'sh', '-c', `touch ${world.out('app-ran')}`], {
      KRUN_STARTUP_TIMEOUT: '3',
      FAKE_ENVOY_NO_XDS: '1',
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      /error: pilot-agent was not ready after 3 s \(waited for GET http:\/\/127\.0\.0\.1:\d+\/healthz\/ready answering 200\)/,
    );
    assert.match(
      r.stderr,
      /--- last lines of pilot-agent ---\n(.+\n)*.*Envoy proxy is NOT ready: config not received from XDS server/,
    );
    const dump = world.out('etc/istio/proxy/config_dump.json');
    const size = (await readFile(dump)).length;
    assert.ok(r.stderr.includes(`Envoy's config dump (${size} bytes): ${dump}`), r.stderr);
    const saved = JSON.parse(await readFile(dump, 'utf8')) as { node: string; received: string[] };
    assert.match(saved.node, new RegExp(`^sidecar~.*~${world.ns}\\.svc\\.cluster\\.local$`));
    assert.deepEqual(saved.received, []);
    assert.equal((await stat(dump)).mode & 0o777, 0o600);
    await assert.rejects(readFile(world.out('app-ran')), { code: 'ENOENT' });
  });
});
