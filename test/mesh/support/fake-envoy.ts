// Stands in for Envoy, which the test machine lacks, when pilot-agent starts "Envoy" in sidecar mode. Like Envoy,
// it reads the bootstrap pilot-agent rendered (`-c`: the test's template gives the node and the agent's xDS
// socket), opens an ADS stream to the agent's xDS proxy (which connects istiod and fetches the DNS name table) and
// asks for clusters and listeners; its admin port (15000) reports `update_success` once istiod's answers arrived,
// which is what pilot-agent's readiness probe reads. Its outbound listener (15001) answers each captured connection
// with `envoy <original destination>` (FAKE_ENVOY_CONNTRACK: asked of conntrack-server.ts); in whitebox mode its HTTP proxy port answers `envoy proxied <method> <url>`.
// FAKE_ENVOY_NO_XDS=1 (from krun's environment, through pilot-agent's) makes it an Envoy that never gets its config;
// /config_dump shows the node and what it received. Started with Traffic Director's bootstrap (--config-path), it
// serves the admin port that bootstrap names and a DNS stand-in on 15053, and opens no xDS stream. FAKE_ENVOY_DIAL=HOST:PORT makes it connect there at start, as
// Envoy's upstream connections would; /fake/report answers its credentials and what that connection read.

import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { connect, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { originalDestination } from './conntrack.ts';

interface Bootstrap {
  node: { id: string; cluster: string; metadata: Record<string, unknown> };
  /** The test's Istio template: the agent's xDS socket and the admin port. */
  xds?: string;
  admin_port?: number;
  /** Traffic Director's bootstrap (krun's, with --config-path): its server is not dialled (it is not local). */
  admin?: { address: { socket_address: { port_value: number } } };
}

const flag = ['-c', '--config-path'].find((f) => process.argv.includes(f));
const configFile = flag && process.argv[process.argv.indexOf(flag) + 1];
if (!configFile) throw new Error('fake envoy: no -c or --config-path bootstrap');
const bootstrap = JSON.parse(readFileSync(configFile, 'utf8')) as Bootstrap;
const adminPort = bootstrap.admin_port ?? bootstrap.admin?.address.socket_address.port_value;

/** google.protobuf.Value of a JSON value (protobufjs names the well-known types' fields in camelCase). */
function value(v: unknown): object {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
  return { structValue: struct(v as Record<string, unknown>) };
}
function struct(o: Record<string, unknown>): object {
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, value(v)])) };
}

const deps = join(dirname(createRequire(import.meta.url).resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const definition = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', {
  keepCase: true,
  defaults: true,
  oneofs: true,
  includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d)),
});
// biome-ignore lint/suspicious/noExplicitAny: the package is typed only at run time
const ads = (grpc.loadPackageDefinition(definition) as any).envoy.service.discovery.v3.AggregatedDiscoveryService;
const node = { id: bootstrap.node.id, cluster: bootstrap.node.cluster, metadata: struct(bootstrap.node.metadata) };
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const received = new Set<string>();
if (bootstrap.xds && process.env.FAKE_ENVOY_NO_XDS !== '1') {
  const client = new ads(`unix://${bootstrap.xds}`, grpc.credentials.createInsecure());
  const stream = client.StreamAggregatedResources();
  stream.on('data', (response: { type_url: string }) => {
    received.add(response.type_url);
    process.stderr.write(`fake envoy: received ${response.type_url}\n`);
  });
  stream.on('error', (err: Error) => process.stderr.write(`fake envoy: ADS stream: ${err.message}\n`));
  stream.write({ node, type_url: CDS });
  stream.write({ node, type_url: LDS });
}

const stats = () =>
  [
    'cluster_manager.cds.update_rejected: 0',
    `cluster_manager.cds.update_success: ${received.has(CDS) ? 1 : 0}`,
    'listener_manager.lds.update_rejected: 0',
    `listener_manager.lds.update_success: ${received.has(LDS) ? 1 : 0}`,
    'listener_manager.workers_started: 1',
    'server.state: 0',
  ].join('\n');

let dialed = '';
if (process.env.FAKE_ENVOY_DIAL) {
  const [host, port] = process.env.FAKE_ENVOY_DIAL.split(':');
  const upstream = connect(Number(port), host);
  upstream.on('data', (c: Buffer) => {
    dialed += c.toString();
  });
  upstream.on('error', (err) => {
    dialed = err.message;
  });
}
const report = () =>
  JSON.stringify({
    uid: process.getuid?.(),
    gid: process.getgid?.(),
    groups: process.getgroups?.(),
    bootstrap: configFile,
    node: bootstrap.node.id,
    dialed: dialed.trim(),
  });

createHttpServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  if (req.url?.startsWith('/stats')) return res.end(`${stats()}\n`);
  if (req.url === '/fake/report') return res.end(report());
  if (req.url === '/config_dump') return res.end(JSON.stringify({ node: bootstrap.node.id, received: [...received] }));
  res.end('OK\n');
}).listen(adminPort, '127.0.0.1');
/** Where a captured connection was going: from the table, or as UID 1337 from conntrack-server.ts when given. */
function destination(conn: Socket): Promise<string> {
  const server = process.env.FAKE_ENVOY_CONNTRACK;
  if (!server) return Promise.resolve(originalDestination(conn));
  return new Promise((resolve) => {
    let answer = '';
    const ask = connect(server, () => ask.write(`${conn.remoteAddress} ${conn.remotePort}\n`));
    ask.on('data', (c: Buffer) => {
      answer += c.toString();
    });
    ask.on('close', () => resolve(answer.trim() || 'unknown'));
    ask.on('error', (err) => resolve(err.message));
  });
}
createServer(async (conn) => conn.end(`envoy ${await destination(conn)}\n`)).listen(15001, '0.0.0.0');
// Traffic Director configures Envoy's DNS listener on 15053, where the capture sends DNS.
if (bootstrap.admin) {
  const dns = createSocket('udp4');
  dns.on('message', (_query, from) => dns.send('envoy dns\n', from.port, from.address));
  dns.bind(15053, '127.0.0.1');
}
// Whitebox mode: istiod gives Envoy an HTTP proxy listener on the agent's HTTP_PROXY_PORT.
if (process.env.HTTP_PROXY_PORT) {
  createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`envoy proxied ${req.method} ${req.url}\n`);
  }).listen(Number(process.env.HTTP_PROXY_PORT), '127.0.0.1');
}
process.on('SIGTERM', () => process.exit(0));
