// Authentication decisions without a server: authorized_keys parsing, key matching with signature checks, and
// OpenSSH certificates (made by ssh-keygen) judged against validity, principals and the trusted CA.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { decide } from '../../src/lib/ssh/auth.ts';
import { parseAuthorizedKeys } from '../../src/lib/ssh/authorized-keys.ts';
import { splitWords } from '../../src/lib/ssh/command.ts';
import { fingerprint } from '../../src/lib/ssh/keys.ts';
import { wireString } from '../../src/lib/ssh/wire.ts';
import { keygen, signUserCertificate } from './support.ts';

const dir = await mkdtemp(join(tmpdir(), 'krun-ssh-auth-'));
after(() => rm(dir, { recursive: true, force: true }));

function ed25519() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const blob = wireString('ssh-ed25519', raw);
  return { blob, privateKey, line: `ssh-ed25519 ${blob.toString('base64')} test` };
}

test('authorized_keys lines: options are honoured or refuse the line, bad lines are reported', () => {
  // Given a file with a plain key, a restricted key, a CA line, an unsupported option and garbage
  const [a, b, c, d] = [ed25519(), ed25519(), ed25519(), ed25519()];
  const text = [
    '# comment',
    a.line,
    `no-pty,no-port-forwarding ${b.line}`,
    `cert-authority,principals="ops,dev" ${c.line}`,
    `command="/bin/false" ${d.line}`,
    'ssh-ed25519 not-base64!',
    '',
  ].join('\n');
  // When it is parsed
  const { entries, errors } = parseAuthorizedKeys(text, 'test');
  // Then the good lines become entries with their restrictions, and the others are reported by line number
  assert.deepEqual(
    entries.map((e) => [e.kind, e.permitPty, e.permitPortForwarding, e.principals]),
    [
      ['key', true, true, undefined],
      ['key', false, false, undefined],
      ['ca', true, true, ['ops', 'dev']],
    ],
  );
  assert.deepEqual(
    errors.map((e) => e.replace(/:.*/, '')),
    ['test line 5', 'test line 6'],
  );
  assert.match(errors[0] ?? '', /option "command" isn't supported/);
});

test('a key is accepted only when authorized and its signature verifies', () => {
  // Given one authorized key and one stranger
  const [allowed, stranger] = [ed25519(), ed25519()];
  const entries = parseAuthorizedKeys(allowed.line, 'env SSH_AUTH').entries;
  const signed = Buffer.from('session id and request');
  const offer = (k: ReturnType<typeof ed25519>, signature?: Buffer) => ({
    user: 'root',
    algo: 'ssh-ed25519',
    keyBlob: k.blob,
    signature,
    signed: signature ? signed : undefined,
  });
  // Then the query for the authorized key succeeds and the stranger is refused
  assert.equal(decide(entries, offer(allowed), 0).ok, true);
  assert.deepEqual(decide(entries, offer(stranger), 0), {
    ok: false,
    reason: 'key not authorized',
    fingerprint: fingerprint(stranger.blob),
  });
  // And a valid signature logs in, while a signature by another key doesn't
  const good = decide(entries, offer(allowed, sign(null, signed, allowed.privateKey)), 0);
  assert.equal(good.ok && good.identity.source, 'env SSH_AUTH');
  const forged = decide(entries, offer(allowed, sign(null, signed, stranger.privateKey)), 0);
  assert.deepEqual(forged.ok ? undefined : forged.reason, 'bad signature');
});

test('certificates: signed by a trusted CA, for the user, inside their validity window', async () => {
  // Given a CA trusted by a cert-authority line and user certificates made by ssh-keygen
  const ca = await keygen(dir, 'ca');
  const user = await keygen(dir, 'user');
  const certify = async (name: string, principals: string, validity: string) => {
    const cert = await signUserCertificate(ca.path, user.path, name, principals, validity);
    const [, b64] = (await readFile(cert, 'utf8')).split(' ');
    return Buffer.from(b64 ?? '', 'base64');
  };
  const entries = parseAuthorizedKeys(`cert-authority ${ca.pub}`, 'file').entries;
  const now = Math.floor(Date.UTC(2030, 0, 15) / 1000);
  const check = (blob: Buffer, who = 'root') =>
    decide(entries, { user: who, algo: 'ssh-ed25519-cert-v01@openssh.com', keyBlob: blob }, now);
  // When the certificates are judged at a fixed time
  const valid = await certify('alice', 'root', '20300101:20300201');
  assert.equal(check(valid).ok, true);
  const validDecision = check(valid);
  assert.equal(validDecision.ok && validDecision.identity.keyId, 'alice');
  // Then expiry, a wrong principal and an untrusted CA are each refused with the reason
  const expired = await certify('bob', 'root', '20291201:20300101');
  assert.equal((check(expired) as { reason: string }).reason, 'certificate expired');
  assert.equal((check(valid, 'admin') as { reason: string }).reason, 'no principal matches admin');
  const other = await keygen(dir, 'other-ca');
  const untrusted = parseAuthorizedKeys(`cert-authority ${other.pub}`, 'file').entries;
  const d = decide(untrusted, { user: 'root', algo: 'ssh-ed25519-cert-v01@openssh.com', keyBlob: valid }, now);
  assert.equal((d as { reason: string }).reason, 'certificate signed by an untrusted CA');
});

test('commands without a shell are split into words with quotes and escapes', () => {
  assert.deepEqual(splitWords(`ls -l "/tmp/a b" 'c d' e\\ f`), ['ls', '-l', '/tmp/a b', 'c d', 'e f']);
  assert.deepEqual(splitWords('  '), []);
});
