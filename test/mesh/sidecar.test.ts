// `krun run` as root in sidecar mode, end to end inside a network namespace this test creates (only loopback: nothing
// leaves it): the real apiserver and istiod are reached through Unix sockets (the filesystem is shared), krun applies
// the capture with Debian's iptables, starts the real pilot-agent (which starts "Envoy": a stand-in serving the admin
// stats its readiness probe reads and the 15001 listener, as the machine has no Envoy), and only then the app, whose
// outbound TCP lands on 15001 and whose DNS goes through pilot-agent's real DNS proxy.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
import { TestNetns } from './support/netns.ts';
import { meshWorkload } from './support/workload.ts';

const plane = await controlPlane();
const kube = new TestKube(plane.access);
const iptables = await ensureIptables((line) => process.stderr.write(`[iptables fixture] ${line}\n`));
const work = await mkdtemp(join(tmpdir(), 'krun-sidecar-'));
const APP_IP = '10.9.0.1';
const NAMESERVER = '10.9.0.53';
const support = (f: string) => new URL(`./support/${f}`, import.meta.url).pathname;
const netns = await TestNetns.create(`krun-sidecar-${process.pid}`, [APP_IP, NAMESERVER]);
const bridges: Server[] = [];
after(async () => {
  await netns.destroy();
  for (const b of bridges) b.close();
  await rm(work, { recursive: true, force: true });
});

/** A Node one-liner printing the IPv4 addresses of name, resolved with the nameservers of /etc/resolv.conf. */
const resolve = (name: string) =>
  `require('node:dns').promises.resolve4('${name}').then((a) => console.log(a.join(',')), (e) => console.log(e.code))`;

/** Makes 127.0.0.1:port inside the namespace reach 127.0.0.1:port of the host namespace. */
async function bridge(port: number): Promise<void> {
  const socket = join(work, `${port}.sock`);
  const server = createServer((inbound) => {
    const outbound = connect(port, '127.0.0.1');
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  bridges.push(server);
  await netns.serve([process.execPath, support('tcp-to-unix.ts'), String(port), socket]);
}

describe('krun run in sidecar mode, in a network namespace', () => {
  test('capture before the agent, the agent before the app; the app’s TCP and DNS are captured', async () => {
    // Given the control plane reachable in the namespace, its own nameserver, and what answers there
    await bridge(Number(new URL(plane.access.server).port));
    await bridge(Number(plane.istiod.secureGrpcAddress.split(':').at(-1)));
    const resolvConf = `search svc.cluster.local\nnameserver ${NAMESERVER}\n`;
    await netns.resolvConf(resolvConf);
    await netns.serve([
      process.execPath,
      support('netns-listeners.ts'),
      `tcp:${APP_IP}:5432:direct 5432`,
      `dns:${NAMESERVER}:53:10.9.9.9`,
    ]);
    const envoy = join(work, 'envoy');
    await writeFile(envoy, `#!/bin/sh\nexec ${process.execPath} ${support('fake-envoy.ts')} "$@"\n`);
    await chmod(envoy, 0o755);
    const template = join(work, 'envoy_bootstrap_tmpl.json');
    // Enough of Istio's bootstrap template for the stand-in: the node, the agent's xDS socket, the admin port.
    await writeFile(
      template,
      '{"node": {"id": "{{ .nodeID }}", "cluster": "{{ .cluster }}", "metadata": {{ .meta_json_str }}}, ' +
        '"xds": "{{ .config.ConfigPath }}/XDS", "admin_port": {{ .config.ProxyAdminPort }}}\n',
    );
    const w = await meshWorkload(plane, kube, work);
    await rootCertOf(kube, w.ns);
    const web = await kube.post<{ spec: { clusterIP: string } }>(`/api/v1/namespaces/${w.ns}/services`, {
      metadata: { name: 'web' },
      spec: { ports: [{ name: 'http', port: 80 }] },
    });
    // When krun runs, as root in the namespace, an app that dials out and resolves a name
    const out = (f: string) => join(w.dir, f);
    const app = [
      `bash -c 'exec 3<>/dev/tcp/${APP_IP}/8080 && cat <&3' > ${out('seen-8080')}`,
      `bash -c 'exec 3<>/dev/tcp/${APP_IP}/5432 && cat <&3' > ${out('seen-5432')}`,
      `${process.execPath} -e "${resolve('db.example.test')}" > ${out('seen-dns-upstream')}`,
      `${process.execPath} -e "${resolve(`web.${w.ns}.svc.cluster.local`)}" > ${out('seen-dns-mesh')}`,
      `cat /etc/resolv.conf > ${out('seen-resolv.conf')}`,
    ].join('; ');
    const r = await krun(['run', '--', 'sh', '-c', app], {
      prefix: netns.wrap([]),
      cleanEnv: {
        ...w.env,
        ...iptables.env,
        KRUN_IPTABLES_RESTORE: iptables.restore,
        KRUN_ENVOY: envoy,
        ISTIO_BOOTSTRAP: template,
        OUTBOUND_PORTS_EXCLUDE: '5432',
      },
    });
    // Then krun chose sidecar mode, captured before starting the agent, and started the app once the agent was ready
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /"message":"mesh mode sidecar: root, iptables, pilot-agent and Envoy are available"/);
    const order = [
      'applied the outbound capture (iptables)',
      'pilot-agent started',
      'pilot-agent ready',
      'app started',
    ];
    const at = order.map((m) => r.stderr.indexOf(`"message":"${m}"`));
    assert.ok(
      at.every((i, k) => i >= 0 && (k === 0 || i > (at[k - 1] ?? 0))),
      `${order.join(' < ')}: ${at.join(',')}\n${r.stderr}`,
    );
    // And the app's connection landed on 15001 with its original destination; the excluded port went direct
    assert.equal(await readFile(out('seen-8080'), 'utf8'), `envoy ${APP_IP}:8080\n`);
    assert.equal(await readFile(out('seen-5432'), 'utf8'), 'direct 5432\n');
    // And its DNS queries were redirected to pilot-agent's DNS proxy, which answered a Service from istiod's name
    // table (the nameserver would have said 10.9.9.9) and asked the nameserver for the rest
    assert.equal(await readFile(out('seen-dns-mesh'), 'utf8'), `${web.spec.clusterIP}\n`);
    assert.equal(await readFile(out('seen-dns-upstream'), 'utf8'), '10.9.9.9\n');
    const conntrack = (await netns.exec(['cat', '/proc/net/nf_conntrack'])).stdout;
    assert.match(
      conntrack,
      new RegExp(
        `udp .* dst=${NAMESERVER.replaceAll('.', '\\.')} sport=\\d+ dport=53 src=127\\.0\\.0\\.1 dst=\\S+ sport=15053 `,
      ),
      conntrack,
    );
    // And resolv.conf was left as it was, and the kernel holds exactly the rules krun applied
    assert.equal(await readFile(out('seen-resolv.conf'), 'utf8'), resolvConf);
    const saved = (await netns.exec([iptables.save, '-t', 'nat'], [], iptables.env)).stdout;
    assert.deepEqual(
      saved.split('\n').filter((l) => l && !l.startsWith('#')),
      savedNat(krunCapture(NAMESERVER, [5432])),
    );
  });
});
