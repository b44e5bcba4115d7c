// Start-up cost of an operator command by the kind of TARGET, against a plain local krun, measured in the same run
// (interleaved rounds, medians): the whole `krun exec TARGET -- true` wall time of the built CLI, each a new process.
// - SERVICE: a Cloud Run service name (the Admin API resolves it to its URL, then a Google ID token for it);
// - URL: the service's https:// URL (a Google ID token, no Admin API call);
// - plain: 127.0.0.1:PORT of a `krun run` serving HBONE over TLS itself, with --auth none (no Google at all).
// The Google side is the emulator (metadata server as the credentials, Admin API, the Cloud Run front end in this
// process); both workloads are real `krun run` instances. A `gcloud` on PATH matters: google-auth-library runs
// `gcloud config config-helper` when it has to find a project itself, so the output says which one was there.
// Needs `npm run build` and ssh-keygen.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPERATOR, operatorEnv, operatorGcp } from '../test/operator/support.ts';
import { keygen, startKrunSsh } from '../test/ssh/support.ts';
import { BIN } from '../test/support/cli.ts';
import { freePort } from '../test/support/control-plane/ports.ts';
import { createCertificateAuthority, writePem } from '../test/support/pki.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);

const dir = mkdtempSync(join(tmpdir(), 'krun-bench-operator-startup-'));
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const gcp = await operatorGcp();
const key = await keygen(dir, 'id_ed25519');
const behindRun = await startKrunSsh(join(dir, 'run'), { SSH_AUTH: key.pub });
const service = gcp.state.addRunService({ name: 'bench', backendPort: behindRun.hbonePort, http2: true });
gcp.state.grant(gcp.state.runServiceName(service), 'roles/run.invoker', OPERATOR);
const url = gcp.state.runServiceUrls(service)[0] ?? '';

const ca = await createCertificateAuthority('krun-bench-ca');
const leaf = await ca.issue({ commonName: 'local', hosts: ['127.0.0.1'] });
const caFile = writePem(join(dir, 'ca.pem'), ca.certPem);
const local = `127.0.0.1:${await freePort()}`;
const plain = await startKrunSsh(join(dir, 'local'), {
  SSH_AUTH: key.pub,
  KRUN_HBONE_PORT: local,
  KRUN_HBONE_TLS_CERT: writePem(join(dir, 'cert.pem'), leaf.chainPem),
  KRUN_HBONE_TLS_KEY: writePem(join(dir, 'key.pem'), leaf.keyPem),
});

const env = { ...operatorEnv(gcp, dir), CI: 'true' };
const ssh = ['--identity-file', key.path, '--known-hosts', join(dir, 'known_hosts')];
const cases: Record<string, string[]> = {
  'krun exec 127.0.0.1:PORT -- true': ['exec', ...ssh, '--auth', 'none', '--ca-file', caFile, local, '--', 'true'],
  'krun exec URL -- true': ['exec', ...ssh, url, '--', 'true'],
  'krun exec SERVICE -- true': ['exec', ...ssh, 'bench', '--', 'true'],
};

function wallTime(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.on('close', (status) =>
      status === 0
        ? resolve(performance.now() - start)
        : reject(new Error(`krun ${args.join(' ')} exited ${status}: ${err}`)),
    );
  });
}

try {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const args of Object.values(cases)) await wallTime(args); // warm-up: host keys pinned, caches warm
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, args] of Object.entries(cases)) samples[name]?.push(await wallTime(args));
  }
  const baseline = median(samples['krun exec 127.0.0.1:PORT -- true'] ?? []);
  const gcloud = (process.env.PATH ?? '').split(':').find((d) => d && existsSync(join(d, 'gcloud')));
  process.stdout.write(
    `node ${process.version}, ${ROUNDS} rounds (median wall time); Google emulated on loopback; ` +
      `gcloud on PATH: ${gcloud ? join(gcloud, 'gcloud') : 'none'}\n`,
  );
  for (const [name, xs] of Object.entries(samples)) {
    const m = median(xs);
    process.stdout.write(
      `${name.padEnd(34)} ${m.toFixed(0).padStart(6)} ms  +${(m - baseline).toFixed(0).padStart(4)} ms  ${(m / baseline).toFixed(2)}x\n`,
    );
  }
} finally {
  await behindRun.stop();
  await plain.stop();
  await gcp.stop();
  rmSync(dir, { recursive: true, force: true });
}
