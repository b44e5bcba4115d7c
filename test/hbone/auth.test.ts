// In-process authentication (bearer JWTs checked against the issuer's JWKS, audience and allowed principals) and
// the TLS listener with ALPN h2, for deployments that are not behind Cloud Run.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { TransportError } from '../../src/lib/errors.ts';
import { jwtAuthenticator } from '../../src/lib/hbone/auth.ts';
import { HboneClient } from '../../src/lib/hbone/client.ts';
import { createJwtVerifier, JwtError } from '../../src/lib/hbone/jwt.ts';
import { type HboneServer, startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { noToken, staticToken, type TokenSource } from '../../src/lib/hbone/token.ts';
import { silentLogger } from '../../src/lib/log/logger.ts';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { createCertificateAuthority } from '../support/pki.ts';
import { collect, echo, random, startTarget, type Target, writeAll } from './support.ts';

const AUDIENCE = 'https://vm.example.com';
const ALLOWED = 'operator@krun-test-project.iam.gserviceaccount.com';

describe('bearer JWT authentication', () => {
  let gcp: GcpEmulator;
  let target: Target;
  let server: HboneServer;

  before(async () => {
    [gcp, target] = await Promise.all([startGcpEmulator(), startTarget(echo)]);
    const verifier = createJwtVerifier({
      issuers: [gcp.issuer.iss],
      audiences: [AUDIENCE],
      jwksUri: gcp.issuer.jwksUri,
    });
    server = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({ named: { echo: String(target.port) } }),
      auth: jwtAuthenticator({ verifier, principals: [`serviceAccount:${ALLOWED}`] }),
      log: silentLogger,
    });
  });
  after(async () => {
    await server.close();
    await target.close();
    await gcp.stop();
  });

  const idToken = (audience: string, email: string) =>
    gcp.issuer.tokens.idToken({ audience, subject: '1234567890', email });

  async function attempt(tokens: TokenSource): Promise<unknown> {
    const client = new HboneClient({ origin: new URL(server.url), tokens, log: silentLogger });
    try {
      const tunnel = await client.open('echo');
      const data = random(64 * 1024);
      const [, back] = await Promise.all([writeAll(tunnel.stream, data), collect(tunnel.stream)]);
      return Buffer.compare(back, data) === 0 ? 'ok' : 'corrupted';
    } catch (err) {
      return err;
    } finally {
      client.close();
    }
  }

  test('an allowed principal with a token for this audience gets a tunnel', async () => {
    assert.equal(await attempt(staticToken(idToken(AUDIENCE, ALLOWED))), 'ok');
  });

  test('no token is rejected with 401', async () => {
    const err = await attempt(noToken);
    assert.ok(err instanceof TransportError);
    assert.match(err.message, /rejected the credentials \(HTTP 401\)/);
  });

  test('a token for another audience is rejected with 401', async () => {
    const err = await attempt(staticToken(idToken('https://other.example.com', ALLOWED)));
    assert.ok(err instanceof TransportError);
    assert.match(err.message, /HTTP 401/);
  });

  test('a valid token of a principal not on the list is rejected with 403', async () => {
    const err = await attempt(staticToken(idToken(AUDIENCE, 'intruder@example.com')));
    assert.ok(err instanceof TransportError);
    assert.match(err.message, /permission denied .*\(HTTP 403\)/);
  });

  test('the reverse proxy is guarded too: no token, no app', async () => {
    const res = await fetch(`${server.url}/anything`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
  });
});

describe('JWT verification', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256' }] };
  const now = 1_900_000_000_000;
  const jwt = (claims: Record<string, unknown>, kid = 'k1') => {
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${part({ alg: 'ES256', kid })}.${part(claims)}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  const base = { iss: 'https://kubernetes.default.svc', aud: ['krun'], sub: 'system:serviceaccount:ops:debugger' };
  const verifier = createJwtVerifier({ issuers: [base.iss], audiences: ['krun'], jwks, now: () => now });

  test('an ES256 Kubernetes-style token within its lifetime verifies', async () => {
    const claims = await verifier.verify(jwt({ ...base, exp: now / 1000 + 600 }));
    assert.equal(claims.sub, 'system:serviceaccount:ops:debugger');
  });

  for (const [name, token, reason] of [
    ['expired', jwt({ ...base, exp: now / 1000 - 3600 }), /expired/],
    ['not yet valid', jwt({ ...base, exp: now / 1000 + 7200, nbf: now / 1000 + 3600 }), /not valid yet/],
    ['another issuer', jwt({ ...base, iss: 'https://evil', exp: now / 1000 + 600 }), /issuer/],
    ['another audience', jwt({ ...base, aud: 'other', exp: now / 1000 + 600 }), /audience other/],
    ['an unknown key', jwt({ ...base, exp: now / 1000 + 600 }, 'k2'), /key the issuer does not publish/],
    ['a forged signature', `${jwt({ ...base, exp: now / 1000 + 600 }).slice(0, -4)}AAAA`, /signature/],
    ['alg none', 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.', /unsupported JWT algorithm none/],
  ] as const) {
    test(`a token with ${name} is refused`, async () => {
      await assert.rejects(
        verifier.verify(token),
        (err: unknown) => err instanceof JwtError && reason.test(err.message),
      );
    });
  }
});

describe('TLS listener', () => {
  test('serves HTTP/2 tunnels over TLS with ALPN h2 to a client that trusts its CA', async () => {
    // Given a server with a certificate for 127.0.0.1 from a private CA
    const ca = await createCertificateAuthority('krun hbone test CA');
    const leaf = await ca.issue({ commonName: 'localhost', hosts: ['localhost', '127.0.0.1'], usage: 'server' });
    const target = await startTarget(echo);
    const server = await startHboneServer({
      listen: { host: '127.0.0.1', port: 0 },
      targets: new TargetTable({ named: { echo: String(target.port) } }),
      tls: { key: leaf.keyPem, cert: leaf.chainPem },
      log: silentLogger,
    });
    const client = new HboneClient({
      origin: new URL(`https://localhost:${server.address.port}`),
      tokens: noToken,
      log: silentLogger,
      ca: ca.certPem,
      transport: 'h2',
    });
    // When a tunnel carries random bytes
    const tunnel = await client.open('echo');
    const data = random(256 * 1024);
    const [, back] = await Promise.all([writeAll(tunnel.stream, data), collect(tunnel.stream)]);
    // Then they come back exactly, over HTTP/2
    assert.equal(tunnel.via, 'h2');
    assert.equal(Buffer.compare(back, data), 0);
    client.close();
    await server.close();
    await target.close();
  });
});
