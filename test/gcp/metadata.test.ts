// The metadata server and the emulator's identity, through gcp-metadata and google-auth-library as krun uses them:
// project and instance facts, the default service account's access and ID tokens, and ID token verification
// against the certificates the emulator publishes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as gcpMetadata from 'gcp-metadata';
import { Compute, GoogleAuth, OAuth2Client } from 'google-auth-library';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';

let gcp: GcpEmulator;

before(async () => {
  gcp = await startGcpEmulator({ projectId: 'meta-project', projectNumber: '271828182845', region: 'europe-west1' });
  gcp.useInThisProcess();
});
after(() => gcp.stop());

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('emulator start-up', () => {
  test('binds every endpoint to 127.0.0.1, each on its own port', () => {
    // Given the emulator started in before()
    // Then every endpoint is a loopback URL on its own port
    const urls = [`http://${gcp.metadataHost}`, ...Object.values(gcp.endpoints)];
    for (const url of urls) assert.equal(new URL(url).hostname, '127.0.0.1', url);
    assert.equal(new Set(urls.map((u) => new URL(u).port)).size, urls.length);
    assert.ok(gcp.frontEnd.port > 0);
  });
});

describe('metadata server', () => {
  test('answers project, instance and service account facts through gcp-metadata', async () => {
    // When krun's discovery reads the metadata server
    const [projectId, numeric, region, zone, email, id] = await Promise.all([
      gcpMetadata.project('project-id'),
      gcpMetadata.project('numeric-project-id'),
      gcpMetadata.instance('region'),
      gcpMetadata.instance('zone'),
      gcpMetadata.instance('service-accounts/default/email'),
      gcpMetadata.instance('id'),
    ]);
    // Then it sees the seeded project and the Cloud Run-style instance
    assert.equal(projectId, 'meta-project');
    assert.equal(String(numeric), '271828182845');
    assert.equal(region, 'projects/271828182845/regions/europe-west1');
    assert.equal(zone, 'projects/271828182845/zones/europe-west1-1');
    assert.equal(email, '271828182845-compute@developer.gserviceaccount.com');
    assert.equal(typeof id === 'string' || typeof id === 'number', true);
    // And the server is detected as available, as google-auth-library's ADC does
    assert.equal(await gcpMetadata.isAvailable(), true);
  });

  test('serves attributes that tests set, and lists directories recursively as JSON', async () => {
    // Given cluster attributes as on a GKE node
    gcp.metadata.attributes['cluster-name'] = 'asm-cluster';
    gcp.metadata.attributes['cluster-location'] = 'europe-west1';
    // When they are read one by one and as a recursive directory
    const name = await gcpMetadata.instance('attributes/cluster-name');
    const all = await gcpMetadata.instance({ property: 'attributes/', params: { recursive: 'true' } });
    // Then both forms return them
    assert.equal(name, 'asm-cluster');
    assert.deepEqual({ ...all }, { 'cluster-name': 'asm-cluster', 'cluster-location': 'europe-west1' });
  });

  test('refuses requests without Metadata-Flavor: Google, and says so in its own header', async () => {
    // When a client forgets the header
    const res = await fetch(`http://${gcp.metadataHost}/computeMetadata/v1/project/project-id`);
    // Then the server answers 403 and still identifies itself
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('metadata-flavor'), 'Google');
    assert.match(await res.text(), /Missing Metadata-Flavor:Google header/);
  });

  test('answers 404 for an attribute that does not exist', async () => {
    // When a missing attribute is read
    // Then gcp-metadata surfaces the 404
    await assert.rejects(gcpMetadata.instance('attributes/no-such-attribute'), (err: Error & { status?: number }) => {
      assert.equal(err.status, 404);
      return true;
    });
  });

  test('refuses an identity token without an audience', async () => {
    // When an ID token is requested with no audience
    const res = await fetch(
      `http://${gcp.metadataHost}/computeMetadata/v1/instance/service-accounts/default/identity`,
      {
        headers: { 'Metadata-Flavor': 'Google' },
      },
    );
    // Then the server answers 400, as the real one does
    assert.equal(res.status, 400);
    assert.equal(await res.text(), 'non-empty audience parameter required\n');
  });
});

describe('identity through google-auth-library', () => {
  test('Application Default Credentials find the metadata server and get an access token the APIs accept', async () => {
    // Given ADC with no key file, as on Cloud Run
    const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
    // When a client is resolved and asked for a token
    const client = await auth.getClient();
    const { token } = await client.getAccessToken();
    // Then it is the Compute (metadata) client, with the project id from metadata
    assert.ok(client instanceof Compute);
    assert.equal(await auth.getProjectId(), 'meta-project');
    // And the token is one the emulated APIs map to the default service account
    assert.match(token ?? '', /^ya29\./);
    const res = await fetch(`${gcp.endpoints.cloudresourcemanager}/v1/projects/meta-project`, {
      headers: { authorization: `Bearer ${token}` },
    });
    // (the compute SA holds no role yet: authenticated, but not allowed)
    assert.equal(res.status, 403);
    gcp.state.grant('projects/meta-project', 'roles/browser', '271828182845-compute@developer.gserviceaccount.com');
    const allowed = await fetch(`${gcp.endpoints.cloudresourcemanager}/v1/projects/meta-project`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(allowed.status, 200);
  });

  test('an ID token from the metadata server is an RS256 JWT that OAuth2Client.verifyIdToken accepts', async () => {
    // Given an ID token client for a Cloud Run audience
    const audience = 'https://hello-abcdefghij-ew.a.run.app';
    const auth = new GoogleAuth();
    const idClient = await auth.getIdTokenClient(audience);
    const headers = await idClient.getRequestHeaders();
    const idToken = (headers.get('authorization') ?? '').replace(/^Bearer /, '');
    // When it is verified with the emulator's published certificates
    const verifier = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: gcp.issuer.pemCertsUrl } });
    const ticket = await verifier.verifyIdToken({ idToken, audience });
    const payload = ticket.getPayload();
    // Then it carries Google's claims for the default service account
    assert.equal(payload?.iss, 'https://accounts.google.com');
    assert.equal(payload?.aud, audience);
    assert.equal(payload?.email, '271828182845-compute@developer.gserviceaccount.com');
    assert.equal(payload?.email_verified, true);
    assert.equal(payload?.sub, gcp.state.serviceAccount(payload?.email ?? '')?.uniqueId);
    assert.equal((payload?.exp ?? 0) - (payload?.iat ?? 0), 3600);
    assert.deepEqual(Object.keys(JSON.parse(Buffer.from(idToken.split('.')[0] ?? '', 'base64url').toString())), [
      'alg',
      'kid',
      'typ',
    ]);
  });

  test('verifyIdToken rejects the token for another audience, and the JWKS publishes the same key', async () => {
    // Given an ID token for one audience
    const idToken = await new Compute().fetchIdToken('https://a.example');
    // When it is verified for another
    const verifier = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: gcp.issuer.pemCertsUrl } });
    // Then verification fails on the audience
    await assert.rejects(verifier.verifyIdToken({ idToken, audience: 'https://b.example' }), /Wrong recipient/);
    // And the JWKS names the token's key id
    const jwks = (await (await fetch(gcp.issuer.jwksUri)).json()) as { keys: { kid: string; alg: string }[] };
    const kid = JSON.parse(Buffer.from(idToken.split('.')[0] ?? '', 'base64url').toString()).kid as string;
    assert.deepEqual(
      jwks.keys.map((k) => [k.kid, k.alg]),
      [[kid, 'RS256']],
    );
    // And format=full (what google-auth-library asks for) includes the email
    assert.equal(claimsOf(idToken).email, '271828182845-compute@developer.gserviceaccount.com');
  });

  test('an expired access token is 401 UNAUTHENTICATED', async () => {
    // Given a token that expired a second ago
    const { token } = gcp.state.accessToken('271828182845-compute@developer.gserviceaccount.com', {
      lifetimeSeconds: -1,
    });
    // When it is used
    const res = await fetch(`${gcp.endpoints.cloudresourcemanager}/v1/projects/meta-project`, {
      headers: { authorization: `Bearer ${token}` },
    });
    // Then the API refuses it in Google's error format
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { code: number; status: string } };
    assert.equal(body.error.code, 401);
    assert.equal(body.error.status, 'UNAUTHENTICATED');
  });
});
