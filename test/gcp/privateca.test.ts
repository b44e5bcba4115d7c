// The emulated Certificate Authority Service, over REST as krun calls it: who may create certificates in which
// subject mode, where the SAN comes from, and Google's errors for the requests the API refuses.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { workloadKeyAndCsr } from '../../src/lib/mesh/csr.ts';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import type { CaPool } from '../support/gcp/state.ts';

const PROJECT = 'ca-emu';
const TD = `${PROJECT}.svc.id.goog`;
const WORKLOAD = `serviceAccount:${TD}[shop/cart]`;
const ROBOT = `robot@${PROJECT}.iam.gserviceaccount.com`;
let gcp: GcpEmulator;
let pool: CaPool;

before(async () => {
  gcp = await startGcpEmulator({ projectId: PROJECT, region: 'europe-west1' });
  pool = await gcp.state.addCaPool({ name: 'mesh' });
  gcp.state.addServiceAccount({ accountId: 'robot' });
  gcp.state.grant(pool.name, 'roles/privateca.workloadCertificateRequester', WORKLOAD);
  gcp.state.grant(pool.name, 'roles/privateca.workloadCertificateRequester', ROBOT);
  gcp.state.grant(pool.name, 'roles/privateca.certificateRequester', ROBOT);
});
after(() => gcp.stop());

const csr = (id = 'spiffe://elsewhere/ns/a/sa/b') => workloadKeyAndCsr('ec', TD, id).csrPem;

async function create(principal: string | undefined, body: Record<string, unknown>, id = '') {
  const token = principal ? gcp.state.accessToken(principal).token : undefined;
  const res = await fetch(
    `${gcp.endpoints.privateca}/v1/${pool.name}/certificates${id ? `?certificateId=${id}` : ''}`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    },
  );
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('caPools.certificates.create', () => {
  test('REFLECTED_SPIFFE: the SAN is the caller’s workload identity, whatever the CSR asks', async () => {
    const r = await create(WORKLOAD, { lifetime: '3600s', pemCsr: csr(), subjectMode: 'REFLECTED_SPIFFE' }, 'c-1');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.name, `${pool.name}/certificates/c-1`);
    assert.deepEqual(r.json.pemCertificateChain, [pool.ca.certPem]);
    const leaf = new X509Certificate(String(r.json.pemCertificate));
    assert.equal(leaf.subjectAltName, `URI:spiffe://${TD}/ns/shop/sa/cart`);
    assert.equal(leaf.validToDate.getTime() - leaf.validFromDate.getTime(), 3600_000);
    assert.ok(leaf.verify(new X509Certificate(pool.ca.certPem).publicKey));
    // The same id again
    const again = await create(WORKLOAD, { lifetime: '3600s', pemCsr: csr(), subjectMode: 'REFLECTED_SPIFFE' }, 'c-1');
    assert.equal(again.status, 409);
    assert.equal((again.json.error as { status: string }).status, 'ALREADY_EXISTS');
  });

  test('DEFAULT: the CSR’s SAN, with privateca.certificates.create', async () => {
    const r = await create(ROBOT, { lifetime: '60s', pemCsr: csr('spiffe://x/ns/y/sa/z') });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(new X509Certificate(String(r.json.pemCertificate)).subjectAltName, 'URI:spiffe://x/ns/y/sa/z');
    // The workload role holds only createForSelf
    const denied = await create(WORKLOAD, { lifetime: '60s', pemCsr: csr() });
    assert.equal(denied.status, 403);
    assert.deepEqual(denied.json, {
      error: {
        code: 403,
        message: `Permission 'privateca.certificates.create' denied on resource '${pool.name}' (or it may not exist).`,
        status: 'PERMISSION_DENIED',
      },
    });
  });

  test('refusals: no SPIFFE identity, no token, no grant, a oneof clash, a forged CSR, no lifetime', async () => {
    const body = { lifetime: '60s', pemCsr: csr(), subjectMode: 'REFLECTED_SPIFFE' };
    const robot = await create(ROBOT, body);
    assert.equal(robot.status, 400);
    assert.equal((robot.json.error as { status: string }).status, 'FAILED_PRECONDITION');
    assert.equal((await create(undefined, body)).status, 401);
    assert.equal((await create(`serviceAccount:${TD}[shop/other]`, body)).status, 403);
    const both = await create(WORKLOAD, { ...body, config: { publicKey: { format: 'PEM', key: 'eA==' } } });
    assert.equal(both.status, 400);
    assert.match(String((both.json.error as { message: string }).message), /oneof/);
    const der = Buffer.from(csr().replace(/-----[^-]+-----|\n/g, ''), 'base64');
    der.writeUInt8(der.readUInt8(der.length - 1) ^ 0xff, der.length - 1); // the signature's last byte
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const bad = await create(WORKLOAD, { ...body, pemCsr: forged });
    assert.equal(bad.status, 400);
    assert.match(String((bad.json.error as { message: string }).message), /signature does not verify/);
    assert.equal((await create(WORKLOAD, { pemCsr: csr(), subjectMode: 'REFLECTED_SPIFFE' })).status, 400);
  });
});
