// A loopback HTTPS front for the real kube-apiserver. Every request is forwarded unchanged (watches stream through)
// except the two a kubelet would answer, which the apiserver cannot here (it would proxy them to the Pod's kubelet,
// translating WebSocket to SPDY): `pods/NAME/attach`, served from the SimRuntime speaking the remote-command
// WebSocket protocols v5.channel.k8s.io / v4.channel.k8s.io byte for byte, and `pods/NAME/log`. Both are
// authorized by the real apiserver first (SelfSubjectAccessReview with the caller's own token), with the verbs the
// apiserver checks: get and create on pods/attach (1.35+), get on pods/log.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttps, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { KubeAccess } from '../kube.ts';
import { createCertificateAuthority } from '../pki.ts';
import type { SimContainer, SimRuntime } from './containers.ts';

export const V5 = 'v5.channel.k8s.io';
export const V4 = 'v4.channel.k8s.io';

const SUBRESOURCE = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(attach|log)$/;

export interface AttachFront {
  /** Access for clients: the front's URL and CA, the admin token. */
  readonly access: KubeAccess;
  /** The subprotocol of every attach session, in order. */
  readonly sessions: string[];
  close(): Promise<void>;
}

export interface FrontOptions {
  /** The subprotocols the front accepts, best first; ['v4.channel.k8s.io'] makes it a pre-1.30 server. */
  readonly protocols?: readonly string[];
  /** Cut every attach session (close without the final Status) once the container has ended: a broken stream. */
  readonly breakStreams?: boolean;
  /** Forward Pod creations but never answer them: the client is interrupted after the server created the Pod. */
  readonly withholdPodCreated?: boolean;
  /** Cut every watch this long after it started, as a proxy or load balancer dropping a long request would. */
  readonly cutWatchesAfterMs?: number;
}

const POD_COLLECTION = /^\/api\/v1\/namespaces\/[^/]+\/pods$/;

export async function startAttachFront(
  upstream: KubeAccess,
  runtime: SimRuntime,
  options: FrontOptions = {},
): Promise<AttachFront> {
  const protocols = options.protocols ?? [V5, V4];
  const ca = await createCertificateAuthority('krun-test-attach-front');
  const leaf = await ca.issue({ commonName: '127.0.0.1', hosts: ['127.0.0.1'], usage: 'server' });
  const sessions: string[] = [];
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (offered) => protocols.find((p) => offered.has(p)) ?? false,
  });

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const out = request(
      new URL(req.url ?? '/', upstream.server),
      { method: req.method, headers: { ...req.headers, host: new URL(upstream.server).host }, ca: upstream.ca },
      (up) => {
        if (options.withholdPodCreated && req.method === 'POST' && POD_COLLECTION.test(req.url ?? '')) {
          up.resume();
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (options.cutWatchesAfterMs !== undefined && /[?&]watch=(1|true)/.test(req.url ?? '')) {
          res.flushHeaders(); // as the apiserver does for a watch: the cut comes after the answer began
          setTimeout(() => res.socket?.destroy(), options.cutWatchesAfterMs).unref();
        }
        up.on('error', () => res.destroy());
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.on('error', () => out.destroy());
    res.on('close', () => out.destroy());
    req.pipe(out);
  };

  const allowed = async (req: IncomingMessage, namespace: string, name: string, sub: string, verbs: string[]) => {
    for (const verb of verbs) {
      const review = await upstreamJson(
        upstream,
        'POST',
        '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { namespace, verb, resource: 'pods', subresource: sub, name } },
        },
        req.headers.authorization,
      );
      if (review.status !== 201 || !(review.body as { status?: { allowed?: boolean } }).status?.allowed) {
        return `pods "${name}" is forbidden: cannot ${verb} resource "pods/${sub}" in namespace "${namespace}"`;
      }
    }
    return undefined;
  };

  const server: Server = createHttps({ key: leaf.keyPem, cert: leaf.certPem }, async (req, res) => {
    const url = new URL(req.url ?? '/', 'https://front');
    const m = SUBRESOURCE.exec(url.pathname);
    if (m?.[3] !== 'log') return forward(req, res);
    const [, namespace = '', name = ''] = m;
    const denied = await allowed(req, namespace, name, 'log', ['get']);
    if (denied) return status(res, 403, 'Forbidden', denied);
    const containerName = url.searchParams.get('container') ?? '';
    const container = runtime.get(namespace, name, containerName);
    if (!container) {
      return status(res, 400, 'BadRequest', `container "${containerName}" in pod "${name}" is waiting to start`);
    }
    const limit = Number(url.searchParams.get('limitBytes') ?? Number.POSITIVE_INFINITY);
    const log = Buffer.concat(container.log);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(log.subarray(0, Math.min(limit, log.length)));
  });

  server.on('upgrade', async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://front');
    const m = SUBRESOURCE.exec(url.pathname);
    if (m?.[3] !== 'attach') return reject(socket, 404, 'NotFound', 'only pods/attach upgrades here');
    const [, namespace = '', name = ''] = m;
    const denied = await allowed(req, namespace, name, 'attach', ['get', 'create']);
    if (denied) return reject(socket, 403, 'Forbidden', denied);
    const containerName = url.searchParams.get('container') ?? '';
    const container = runtime.get(namespace, name, containerName);
    if (!container?.running) {
      return reject(socket, 400, 'BadRequest', `container ${containerName} of pod ${name} is not running`);
    }
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, container, sessions, options.breakStreams === true));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    access: { server: `https://127.0.0.1:${port}`, ca: ca.certPem, token: upstream.token },
    sessions,
    close: () =>
      new Promise((resolve) => {
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One attach session: channel 0 in, 1 and 2 out, the Status on 3 when the container ends, [255, 0] = stdin EOF. */
function serve(ws: WebSocket, container: SimContainer, sessions: string[], breakStream: boolean): void {
  const v5 = ws.protocol === V5;
  sessions.push(ws.protocol);
  const detach = container.attach((channel, data) =>
    ws.send(Buffer.concat([Buffer.from([channel]), data]), { binary: true }),
  );
  ws.on('message', (frame: Buffer) => {
    const channel = frame[0];
    if (channel === 0) container.writeStdin(frame.subarray(1));
    else if (channel === 255 && v5 && frame[1] === 0) container.endStdin();
  });
  // stdinOnce: the end of the (first) attach session closes the container's stdin.
  ws.on('close', () => {
    detach();
    container.endStdin();
  });
  void container.exited.then(() => {
    detach();
    if (breakStream) return ws.terminate();
    const done = JSON.stringify({ metadata: {}, status: 'Success' });
    ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(done)]), { binary: true });
    ws.close(1000);
  });
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }));
}

function reject(socket: Duplex, code: number, reason: string, message: string): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
  socket.end(
    `HTTP/1.1 ${code} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function upstreamJson(
  upstream: KubeAccess,
  method: string,
  path: string,
  body: unknown,
  authorization: string | undefined,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, upstream.server),
      {
        method,
        ca: upstream.ca,
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
