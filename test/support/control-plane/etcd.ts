import { join } from 'node:path';
import { freePort } from './ports.ts';
import { type ManagedProcess, startProcess } from './process.ts';
import { waitFor } from './wait.ts';

export interface Etcd {
  readonly url: string;
  readonly process: ManagedProcess;
}

/** A single-member etcd on loopback, without fsync: test data need not survive a power cut. */
export async function startEtcd(binary: string, dir: string): Promise<Etcd> {
  const [client, peer] = await Promise.all([freePort(), freePort()]);
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const proc = startProcess('etcd', binary, {
    logDir: dir,
    args: [
      '--name=default',
      `--data-dir=${join(dir, 'etcd-data')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
  });
  await waitFor(
    'etcd /health',
    async () => {
      const res = await fetch(`${url}/health`);
      return res.ok ? true : undefined;
    },
    { process: proc },
  );
  return { url, process: proc };
}
