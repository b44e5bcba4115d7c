// The gate's admin port, apart from the traffic port: /healthz (the process serves), /readyz (the registrations are
// loaded and the gate is not draining: what the load balancer should follow) and /metrics (Prometheus text).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn } from '../net/listen.ts';
import type { Metrics } from './metrics.ts';

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  readonly ready: () => boolean;
}

export async function startAdmin(options: AdminOptions): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') =>
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    if (path === '/healthz') return send(200, 'ok\n');
    if (path === '/readyz') return options.ready() ? send(200, 'ready\n') : send(503, 'not ready\n');
    if (path === '/metrics') return send(200, options.metrics.text(), 'text/plain; version=0.0.4; charset=utf-8');
    return send(404, 'not found\n');
  });
  return { server, address: await listenOn(server, options.port, options.host) };
}
