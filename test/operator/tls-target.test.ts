// A `host:port` TARGET end to end: a Docker/VM-style `krun run` serving HBONE itself over TLS (its own certificate
// from a private CA, Google ID tokens checked against the configured issuer and principals), reached by `krun exec`
// with the CA trusted through --ca-file or NODE_EXTRA_CA_CERTS; bytes and exit status through the tunnel.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { startKrunSsh } from '../ssh/support.ts';
import { freePort } from '../support/control-plane/ports.ts';
import { createCertificateAuthority, writePem } from '../support/pki.ts';
import { OPERATOR, operator, stopInstance, world } from './support.ts';

const w = await world('tls-target');
const op = await operator(w);
const dir = await w.dir('vm');
const ca = await createCertificateAuthority('krun-test-vm-ca');
const leaf = await ca.issue({ commonName: 'vm', hosts: ['127.0.0.1'] });
const caFile = writePem(join(dir, 'ca.pem'), ca.certPem);
const port = await freePort();
const target = `127.0.0.1:${port}`;
const vm = await startKrunSsh(dir, {
  SSH_AUTH: op.pub,
  KRUN_HBONE_PORT: target,
  KRUN_HBONE_TLS_CERT: writePem(join(dir, 'cert.pem'), leaf.chainPem),
  KRUN_HBONE_TLS_KEY: writePem(join(dir, 'key.pem'), leaf.keyPem),
  // Google ID tokens for this address, from the operator only (the emulator's issuer stands in for Google's).
  KRUN_HBONE_JWT_ISSUER: w.gcp.issuer.iss,
  KRUN_HBONE_JWKS_URI: w.gcp.issuer.jwksUri,
  KRUN_HBONE_JWT_AUDIENCE: `https://${target}`,
  KRUN_HBONE_PRINCIPALS: OPERATOR,
});
w.cleanup(() => stopInstance(vm));

test('exec host:port over TLS with --ca-file: stdin byte for byte, the remote status', async () => {
  // Given 200 KiB of random bytes
  const data = randomBytes(200 * 1024 + 3);
  // When they are piped into a remote cat on the workload, trusting its CA with --ca-file
  const r = await op.run(['exec', '-i', target, '--ca-file', caFile, '--', 'sh', '-c', 'cat; echo done >&2; exit 9'], {
    input: data,
  });
  // Then the bytes come back exactly, stderr apart, and krun exits with the remote status
  assert.equal(r.status, 9, r.stderr);
  assert.ok(r.stdoutBytes.equals(data), 'stdout is the bytes sent');
  assert.match(r.stderr, /^done$/m);
});

test('exec host:port with the CA in NODE_EXTRA_CA_CERTS instead', async () => {
  const r = await op.run(['exec', target, '--', 'echo', 'trusted-by-env'], { env: { NODE_EXTRA_CA_CERTS: caFile } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'trusted-by-env\n');
});

test('exec host:port without trusting its CA fails with 255 and says how to trust it', async () => {
  const r = await op.run(['exec', target, '--', 'true']);
  assert.equal(r.status, 255, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(
    r.stderr,
    new RegExp(`^error: can't connect to https://${target}: self-signed certificate in certificate chain\\n`),
  );
  assert.match(
    r.stderr,
    /--ca-file CA\.pem \(or KRUN_CA_FILE\) to trust the CA that signed the workload's certificate/,
  );
});
