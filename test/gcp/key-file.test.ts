// Service account key files: IAM creates the key (through @googleapis/iam), and google-auth-library, given the file,
// exchanges a JWT signed with its private key at Google's OAuth 2.0 token endpoint for the account's access and ID
// tokens, as krun does with GOOGLE_APPLICATION_CREDENTIALS off Google Cloud.
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { iam } from '@googleapis/iam';
import { JWT, OAuth2Client } from 'google-auth-library';
import { type GcpEmulator, startGcpEmulator } from '../support/gcp/index.ts';
import { verifyAccessToken } from '../support/gcp/tokens.ts';
import { failure } from './errors.ts';

const PROJECT = 'key-project';
const ADMIN = 'admin@example.com';
const NOBODY = 'nobody@example.com';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

let gcp: GcpEmulator;
let dir: string;

before(async () => {
  gcp = await startGcpEmulator({ projectId: PROJECT, projectNumber: '161803398874' });
  gcp.useInThisProcess();
  gcp.state.grant(`projects/${PROJECT}`, 'roles/owner', ADMIN);
  dir = await mkdtemp(join(tmpdir(), 'krun-key-file-'));
});
after(async () => {
  await gcp.stop();
  await rm(dir, { recursive: true, force: true });
});

function authAs(principal: string): never {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: gcp.state.accessToken(principal).token });
  return client as never;
}

let n = 0;
async function save(keyFile: string): Promise<string> {
  const file = join(dir, `key-${++n}.json`);
  await writeFile(file, keyFile, { mode: 0o600 });
  return file;
}

/** A service account of the project, and a key file for it written to disk. */
async function accountWithKey(accountId: string): Promise<{ email: string; keyFile: string }> {
  const { email } = gcp.state.addServiceAccount({ projectId: PROJECT, accountId });
  return { email, keyFile: await save(await gcp.state.createKeyFile(email)) };
}

describe('IAM service account keys (@googleapis/iam v1)', () => {
  test('keys.create returns a Google credentials file for a new RSA 2048 key', async () => {
    // Given a key admin for a service account
    const { email, uniqueId } = gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'ci-deployer' });
    gcp.state.grant(`projects/${PROJECT}/serviceAccounts/${email}`, 'roles/iam.serviceAccountKeyAdmin', NOBODY);
    const client = iam({ version: 'v1', auth: authAs(NOBODY), rootUrl: gcp.rootUrl('iam') });
    // When a key is created
    const { status, data } = await client.projects.serviceAccounts.keys.create({
      name: `projects/-/serviceAccounts/${email}`,
      requestBody: {},
    });
    // Then the answer names the key and carries the credentials file
    assert.equal(status, 200);
    const file = JSON.parse(Buffer.from(data.privateKeyData ?? '', 'base64').toString('utf8'));
    assert.equal(data.name, `projects/${PROJECT}/serviceAccounts/${email}/keys/${file.private_key_id}`);
    assert.match(file.private_key_id, /^[0-9a-f]{40}$/);
    assert.deepEqual(
      { ...data, name: undefined, privateKeyData: undefined, validAfterTime: undefined },
      {
        name: undefined,
        privateKeyData: undefined,
        validAfterTime: undefined,
        privateKeyType: 'TYPE_GOOGLE_CREDENTIALS_FILE',
        validBeforeTime: '9999-12-31T23:59:59Z',
        keyAlgorithm: 'KEY_ALG_RSA_2048',
        keyOrigin: 'GOOGLE_PROVIDED',
        keyType: 'USER_MANAGED',
      },
    );
    assert.ok(Math.abs(Date.parse(data.validAfterTime ?? '') - Date.now()) < 5000, data.validAfterTime ?? '');
    // And the file is Google's, its token_uri the emulator's token endpoint
    assert.deepEqual(
      { ...file, private_key: undefined, private_key_id: undefined },
      {
        type: 'service_account',
        project_id: PROJECT,
        private_key_id: undefined,
        private_key: undefined,
        client_email: email,
        client_id: uniqueId,
        auth_uri: 'https://accounts.google.com/o/oauth2/auth',
        token_uri: `${gcp.endpoints.oauth2}/token`,
        auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
        client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/ci-deployer%40${PROJECT}.iam.gserviceaccount.com`,
        universe_domain: 'googleapis.com',
      },
    );
    assert.match(file.private_key, /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+\n-----END PRIVATE KEY-----\n$/);
    const key = createPrivateKey(file.private_key);
    assert.equal(key.asymmetricKeyType, 'rsa');
    assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    // And google-auth-library authenticates with it as the account
    const jwt = new JWT({ keyFile: await save(Buffer.from(data.privateKeyData ?? '', 'base64').toString()) });
    const { token } = await jwt.createScoped([SCOPE]).getAccessToken();
    assert.equal(verifyAccessToken(gcp.accessTokenKey, token ?? '')?.email, email);
  });

  test('keys.create for an unknown account is 404 NOT_FOUND; a caller without the permission gets 403', async () => {
    // Given a project owner and a caller with no role
    const owner = iam({ version: 'v1', auth: authAs(ADMIN), rootUrl: gcp.rootUrl('iam') });
    const nobody = iam({ version: 'v1', auth: authAs(NOBODY), rootUrl: gcp.rootUrl('iam') });
    gcp.state.addServiceAccount({ projectId: PROJECT, accountId: 'guarded-sa' });
    // When they create keys for an account that does not exist, and for one they may not touch
    // Then the owner learns it does not exist, the other is refused
    assert.deepEqual(
      (
        await failure(
          owner.projects.serviceAccounts.keys.create({
            name: `projects/${PROJECT}/serviceAccounts/ghost@${PROJECT}.iam.gserviceaccount.com`,
            requestBody: {},
          }),
        )
      ).slice(0, 2),
      [404, 'NOT_FOUND'],
    );
    assert.deepEqual(
      await failure(
        nobody.projects.serviceAccounts.keys.create({
          name: `projects/${PROJECT}/serviceAccounts/guarded-sa@${PROJECT}.iam.gserviceaccount.com`,
          requestBody: {},
        }),
      ),
      [
        403,
        'PERMISSION_DENIED',
        `Permission 'iam.serviceAccountKeys.create' denied on resource 'projects/${PROJECT}/serviceAccounts/guarded-sa@${PROJECT}.iam.gserviceaccount.com' (or it may not exist).`,
      ],
    );
    assert.deepEqual(gcp.state.keysOf(`guarded-sa@${PROJECT}.iam.gserviceaccount.com`), []);
  });
});

describe('OAuth 2.0 token endpoint: the JWT-bearer grant of key files (google-auth-library)', () => {
  test("a JWT client with a key file gets the account's access token, and its ID token", async () => {
    // Given a key file of an account that may read the project
    const { email, keyFile } = await accountWithKey('key-reader');
    gcp.state.grant(`projects/${PROJECT}`, 'roles/browser', email);
    const jwt = new JWT({ keyFile, scopes: [SCOPE] });
    // When google-auth-library gets an access token, and calls Resource Manager with it
    const { token } = await jwt.getAccessToken();
    const { data } = await jwt.request<{ projectNumber: string }>({
      url: `${gcp.rootUrl('cloudresourcemanager')}v1/projects/${PROJECT}`,
    });
    // Then the token is the emulator's, for the key's account, with the scope asked for
    const claims = verifyAccessToken(gcp.accessTokenKey, token ?? '');
    assert.deepEqual(
      { ...claims, exp: undefined },
      {
        member: `serviceAccount:${email}`,
        email,
        exp: undefined,
        scopes: [SCOPE],
      },
    );
    assert.ok(Math.abs((claims?.exp ?? 0) * 1000 - (Date.now() + 3_600_000)) < 5000);
    assert.equal(data.projectNumber, '161803398874');
    // And it gets a Google-signed ID token naming the account
    const idToken = await jwt.fetchIdToken('https://hgate.example');
    const id = gcp.issuer.tokens.verify(idToken, ['https://hgate.example']);
    assert.equal(id.email, email);
    assert.equal(id.sub, gcp.state.serviceAccount(email)?.uniqueId);
  });

  test('a key IAM never issued, or an unknown account, is invalid_grant', async () => {
    // Given a key file whose private key is not one of the account's keys, and one for an account that does not exist
    const { keyFile } = await accountWithKey('key-victim');
    const forged = JSON.parse(await readFile(keyFile, 'utf8'));
    forged.private_key = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const ghost = { ...forged, client_email: `ghost@${PROJECT}.iam.gserviceaccount.com` };
    // When google-auth-library exchanges them
    const attempt = async (json: object) => {
      try {
        await new JWT({ keyFile: await save(JSON.stringify(json)), scopes: [SCOPE] }).getAccessToken();
      } catch (err) {
        const e = err as { status?: number; response?: { data?: unknown }; message: string };
        return [e.status, e.response?.data, e.message];
      }
      return assert.fail('expected the exchange to fail');
    };
    // Then the token endpoint refuses both in OAuth's error shape
    assert.deepEqual(await attempt(forged), [
      400,
      { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' },
      'invalid_grant: Invalid JWT Signature.',
    ]);
    assert.deepEqual(await attempt(ghost), [
      400,
      { error: 'invalid_grant', error_description: 'Invalid grant: account not found' },
      'invalid_grant: Invalid grant: account not found',
    ]);
  });

  test('a client that honours token_uri posts there: the audience must be it, and the assertion current', async () => {
    // Given a key file, as a client other than google-auth-library reads it
    const { email, keyFile } = await accountWithKey('key-go-client');
    const file = JSON.parse(await readFile(keyFile, 'utf8'));
    const now = Math.floor(Date.now() / 1000);
    const assertion = (claims: Record<string, unknown>) => {
      const input = [{ alg: 'RS256', typ: 'JWT', kid: file.private_key_id }, claims]
        .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
        .join('.');
      return `${input}.${sign('sha256', Buffer.from(input), file.private_key).toString('base64url')}`;
    };
    const post = async (claims: Record<string, unknown>): Promise<[number, Record<string, unknown>]> => {
      const res = await fetch(file.token_uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
          assertion: assertion(claims),
        }),
      });
      return [res.status, (await res.json()) as Record<string, unknown>];
    };
    const claims = { iss: email, scope: SCOPE, aud: file.token_uri, iat: now, exp: now + 3600 };
    // When it sends a current assertion for token_uri
    const [status, body] = await post(claims);
    // Then it gets an access token for the account
    assert.equal(status, 200);
    assert.deepEqual(
      { ...body, access_token: undefined },
      {
        access_token: undefined,
        expires_in: 3600,
        token_type: 'Bearer',
      },
    );
    assert.equal(verifyAccessToken(gcp.accessTokenKey, String(body.access_token))?.email, email);
    // And another audience, or an expired assertion, is refused
    assert.deepEqual(await post({ ...claims, aud: 'https://example.com/token' }), [
      400,
      { error: 'invalid_grant', error_description: 'Invalid JWT: Failed audience check.' },
    ]);
    assert.deepEqual(await post({ ...claims, iat: now - 7200, exp: now - 3600 }), [
      400,
      {
        error: 'invalid_grant',
        error_description:
          'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your ' +
          'iat and exp values in the JWT claim.',
      },
    ]);
  });
});
