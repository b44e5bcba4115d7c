// The gate's world: a mesh CA, an app that speaks mutual TLS (the workload's mesh port), `krun gate` spawned as the
// built CLI, and TLS clients that reach the app through it by SNI.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { checkServerIdentity, createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { logLines } from '../ssh/support.ts';
import { type Spawned, spawnKrun } from '../support/cli.ts';
import { type CertificateAuthority, createCertificateAuthority, type KeyAndCertificate } from '../support/pki.ts';

export interface MeshPki {
  readonly ca: CertificateAuthority;
  /** The app's serving certificate for `host`. */
  readonly app: KeyAndCertificate;
  /** A mesh client's certificate (CN `mesh-client`). */
  readonly client: KeyAndCertificate;
}

export async function meshPki(host: string): Promise<MeshPki> {
  const ca = await createCertificateAuthority('mesh root');
  const [app, client] = await Promise.all([
    ca.issue({ commonName: 'fortio app', hosts: [host], usage: 'server' }),
    ca.issue({ commonName: 'mesh-client', usage: 'client' }),
  ]);
  return { ca, app, client };
}

export interface App {
  readonly port: number;
  /** The client certificate CN of each connection the app accepted. */
  readonly peers: string[];
  close(): Promise<void>;
}

/**
 * The workload's mTLS port: requires a client certificate from the mesh CA, echoes every byte, and ends its side
 * when the client ends its own or sends a `QUIT` line (so openssl s_client, which waits for the server, finishes).
 */
export async function startApp(pki: MeshPki): Promise<App> {
  const peers: string[] = [];
  const server = createTlsServer(
    {
      key: pki.app.keyPem,
      cert: pki.app.chainPem,
      ca: pki.ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['istio', 'h2'],
    },
    (socket: TLSSocket) => {
      peers.push(String(socket.getPeerCertificate().subject?.CN));
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        socket.write(chunk);
        if (chunk.includes('QUIT\n')) socket.end();
      });
      socket.on('end', () => socket.end());
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    peers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface Exchange {
  readonly authorized: boolean;
  readonly serverCn: string;
  readonly alpn: string | false;
  readonly received: Buffer;
}

/** A mesh client's TLS connection through the gate: sends `payload`, half-closes, and reads until the app ends. */
export function exchange(port: number, sni: string, host: string, pki: MeshPki, payload: Buffer): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: sni,
      ca: pki.ca.certPem,
      key: pki.client.keyPem,
      cert: pki.client.chainPem,
      ALPNProtocols: ['istio'],
      // The Istio SNI is not the certificate's name; the app's host is.
      checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
    });
    const chunks: Buffer[] = [];
    let session: Omit<Exchange, 'received'> | undefined;
    socket.on('error', reject);
    socket.once('secureConnect', () => {
      session = {
        authorized: socket.authorized,
        serverCn: String(socket.getPeerCertificate().subject?.CN),
        alpn: socket.alpnProtocol ?? false,
      };
      socket.end(payload);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () =>
      session
        ? resolve({ ...session, received: Buffer.concat(chunks) })
        : reject(new Error('the connection ended before the TLS handshake')),
    );
  });
}

/** How a TLS client's attempt ended when the gate closed it before any server spoke. */
export function refusedHandshake(port: number, sni: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: sni, rejectUnauthorized: false });
    socket.once('secureConnect', () => resolve('connected'));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

export interface RunningGate {
  readonly krun: Spawned;
  readonly port: number;
  readonly adminPort: number;
  /** The admin port's answer to GET `path`. */
  admin(path: string): Promise<{ status: number; body: string }>;
  /** A series' value in /metrics (0 when absent). */
  metric(series: string): Promise<number>;
  /** The JSON log lines with this message. */
  logs(message: string): Record<string, unknown>[];
  stop(): Promise<void>;
}

/** `krun gate` with the given flags, on loopback and free ports unless they say otherwise. */
export async function startGateCli(args: readonly string[], env: Record<string, string | undefined>) {
  const has = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  const defaults = [
    ...(has('--address') ? [] : ['--address', '127.0.0.1']),
    ...(has('--port') ? [] : ['--port', '0']),
    ...(has('--admin-port') ? [] : ['--admin-port', '0']),
  ];
  const krun = spawnKrun(['gate', ...defaults, ...args], { cleanEnv: { PATH: process.env.PATH, ...env } });
  const exited = krun.exited.then((r) => {
    throw new Error(`krun gate exited with ${r.status}`);
  });
  await Promise.race([krun.waitForLog('gate listening'), exited]).catch((err: Error) => {
    krun.child.kill('SIGKILL');
    throw new Error(`${err.message}\n--- the gate's log:\n${krun.stderr()}`);
  });
  const listening = logLines(krun, 'gate listening')[0] ?? {};
  const portOf = (address: unknown) => Number(String(address).split(':').at(-1));
  const adminPort = portOf(listening.admin);
  const admin = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
    return { status: res.status, body: await res.text() };
  };
  const gate: RunningGate = {
    krun,
    port: portOf(listening.address),
    adminPort,
    admin,
    metric: async (series) => {
      const { body } = await admin('/metrics');
      const line = body.split('\n').find((l) => l.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : 0;
    },
    logs: (message) => logLines(krun, message),
    stop: async () => {
      if (krun.child.exitCode === null && krun.child.signalCode === null) krun.child.kill('SIGTERM');
      await krun.exited;
    },
  };
  return gate;
}
