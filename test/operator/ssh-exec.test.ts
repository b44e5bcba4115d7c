// `krun ssh` and `krun exec` end to end: a service name resolved by the emulated Cloud Run Admin API to a URL served
// by the emulated front end, which carries HTTP/2 to a real `krun run` with the SSH debug server; the in-process
// SSH client over one HBONE tunnel. Output streams, stdin, exit statuses, pinned host keys and every refusal.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { keygen } from '../ssh/support.ts';
import { deploy, OPERATOR, operator, PROJECT, REGION, world } from './support.ts';

const w = await world('ssh-exec');

const op = await operator(w);
const debug = await deploy(w, 'debug', { SSH_AUTH: op.pub }, { invoker: OPERATOR });
await deploy(w, 'no-ssh', {}, { invoker: OPERATOR });
await deploy(w, 'denied', { SSH_AUTH: op.pub });
const url = debug.url;

describe('krun ssh and exec', () => {
  test('ssh -- cmd: stdout and stderr apart, the remote status, the instance on stderr, the host key pinned', async () => {
    // When the operator runs a command by service name (project and region from gcloud's variables)
    const r = await op.run(['ssh', 'debug', '--log-format', 'human', '--', 'echo hello; echo oops >&2; exit 3']);
    // Then stdout has exactly the command's output, stderr its error output, and krun exits with its status
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /^oops$/m);
    // And stderr names the service, its URL and the instance reached
    const host = new URL(url).host;
    assert.match(
      r.stderr,
      new RegExp(
        `^Connected to Cloud Run service debug \\(https://${host.replaceAll('.', '\\.')}\\), instance \\S+, host key SHA256:`,
        'm',
      ),
    );
    // And the host key was pinned under the service's host name in krun's known_hosts
    const known = await readFile(join(op.home, '.config/krun/known_hosts'), 'utf8');
    assert.match(known, new RegExp(`^${host.replaceAll('.', '\\.')} ssh-ed25519 [A-Za-z0-9+/=]+\\n$`));
    assert.match(r.stderr, /Permanently added/);
    // And a second connection checks against the pin silently
    const again = await op.run(['ssh', 'debug', '--', 'true']);
    assert.equal(again.status, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /Permanently added/);
  });

  test('ssh without a command and without a terminal runs the shell on stdin', async () => {
    const r = await op.run(['ssh', 'debug'], { input: 'echo from-the-shell\nexit 4\n' });
    assert.equal(r.stdout, 'from-the-shell\n');
    assert.equal(r.status, 4, r.stderr);
  });

  test('exec -i pipes stdin byte for byte and returns the remote status; argv is kept exactly', async () => {
    // Given 300 KiB of random bytes
    const data = randomBytes(300 * 1024 + 5);
    // When they are piped into a remote cat that then exits 7 (the project given as a flag this time)
    const r = await op.run(
      ['exec', '-i', 'debug', '--project', PROJECT, '--region', REGION, '--', 'sh', '-c', 'cat; exit 7'],
      {
        input: data,
        env: { CLOUDSDK_CORE_PROJECT: undefined, CLOUDSDK_RUN_REGION: undefined },
      },
    );
    // Then stdout is exactly those bytes and krun exits 7
    assert.equal(r.status, 7, r.stderr);
    assert.ok(r.stdoutBytes.equals(data), 'stdout is the bytes sent');
    // And arguments with spaces and quotes arrive as they were given
    const argv = await op.run(['exec', 'debug', '--', 'printf', '[%s]\\n', 'a b', "it's", '$HOME']);
    assert.equal(argv.status, 0, argv.stderr);
    assert.equal(argv.stdout, "[a b]\n[it's]\n[$HOME]\n");
    // And without -i the command sees no input
    const noStdin = await op.run(['exec', 'debug', '--', 'wc', '-c'], { input: 'ignored' });
    assert.equal(noStdin.stdout.trim(), '0');
  });

  test('exec -t without a terminal warns and runs without one', async () => {
    const r = await op.run([
      'exec',
      '-t',
      'debug',
      '--log-format',
      'human',
      '--',
      'sh',
      '-c',
      'test -t 0 || echo no-tty',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'no-tty\n');
    assert.match(r.stderr, /^warn: Unable to use a TTY - input is not a terminal/m);
  });

  test('a URL target works as well as a name', async () => {
    const r = await op.run(['exec', url, '--', 'echo', 'by-url']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'by-url\n');
  });

  test('an unknown service exits 1 naming the service, region and project', async () => {
    const r = await op.run(['exec', 'nope', '--', 'true']);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      new RegExp(`^error: Cloud Run service nope not found in region ${REGION} of project ${PROJECT}\\n`),
    );
  });

  test('no TARGET without a terminal is a usage error naming it (exit 2), for ssh, exec and port-forward', async () => {
    for (const args of [['exec', '--', 'true'], ['ssh'], ['ssh', '--', 'true'], ['port-forward', '8080']]) {
      const r = await op.run(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^error: missing argument TARGET\n/, args.join(' '));
      assert.match(r.stderr, /give TARGET: a Cloud Run service name, an https:\/\/ URL or host:port/);
    }
  });

  test('a wrong region exits 1 naming the region it looked in', async () => {
    const r = await op.run(['exec', 'debug', '--region', 'us-east1', '--', 'true']);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      new RegExp(`^error: Cloud Run service debug not found in region us-east1 of project ${PROJECT}\\n`),
    );
    assert.match(r.stderr, /--region REGION/);
  });

  test('no region anywhere is a usage error (exit 2)', async () => {
    const r = await op.run(['exec', 'debug', '--', 'true'], { env: { CLOUDSDK_RUN_REGION: undefined } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^error: no region to find Cloud Run service debug in\n/);
    assert.match(r.stderr, /--region REGION \(or KRUN_REGION\)/);
  });

  test('a caller without roles/run.invoker is refused: exit 255, "grant roles/run.invoker"', async () => {
    const r = await op.run(['ssh', 'denied', '--', 'true']);
    assert.equal(r.status, 255, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /^error: Cloud Run service denied refused the tunnel \(HTTP 403\): your account lacks roles\/run\.invoker\n/,
    );
    assert.match(
      r.stderr,
      /grant roles\/run\.invoker: gcloud run services add-iam-policy-binding denied --project ops-proj --region europe-west1/,
    );
  });

  test('expired Google credentials: exit 1, one message, "run gcloud auth login"', async () => {
    // Given gcloud's application-default credentials whose refresh token Google no longer accepts
    const adc = join(op.home, 'expired-adc.json');
    await writeFile(
      adc,
      JSON.stringify({
        type: 'authorized_user',
        client_id: 'krun-test.apps.googleusercontent.com',
        client_secret: 'not-a-secret',
        refresh_token: '1//expired-refresh-token',
      }),
    );
    // When the operator reaches a service by name (the Admin API call needs an access token), or by URL (the tunnel
    // needs an ID token)
    for (const target of ['debug', url]) {
      const r = await op.run(['exec', target, '--', 'true'], { env: { GOOGLE_APPLICATION_CREDENTIALS: adc } });
      // Then krun says the credentials expired and how to log in again, without a stack trace, exit 1
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(
        r.stderr,
        'error: your Google credentials have expired or were revoked (Token has been expired or revoked.)\n\n' +
          'Try:\n  run gcloud auth login, then gcloud auth application-default login\n',
      );
    }
  });

  test('a key the service does not authorize: exit 255, "set SSH_AUTH on the service"', async () => {
    const stranger = await operator(w, 'stranger');
    w.gcp; // same metadata identity: the tunnel is allowed, the SSH key is not
    const r = await stranger.run(['ssh', 'debug', '--', 'true']);
    assert.equal(r.status, 255, r.stderr);
    assert.match(r.stderr, /^error: Cloud Run service debug refused your SSH key \(tried .*id_ed25519\)\n/m);
    assert.match(r.stderr, /set SSH_AUTH on the service/);
  });

  test('-i picks the key file, as in OpenSSH', async () => {
    const other = await operator(w, 'other');
    const r = await other.run(['ssh', '-i', op.keyPath, 'debug', '--', 'echo', 'with-i']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'with-i\n');
  });

  test('a service without the SSH debug server: exit 255, "set SSH_AUTH on the service"', async () => {
    const r = await op.run(['ssh', 'no-ssh', '--', 'true']);
    assert.equal(r.status, 255, r.stderr);
    assert.match(r.stderr, /^error: Cloud Run service no-ssh has no SSH debug server running \(HTTP 502\)\n/);
    assert.match(r.stderr, /set SSH_AUTH on the service to your public key: gcloud run services update no-ssh/);
  });

  test('a changed host key is refused with a clear mismatch error', async () => {
    const mallory = await operator(w, 'mallory');
    const host = new URL(url).host;
    const fake = await keygen(mallory.home, 'fake-host-key');
    const [type, blob] = fake.pub.split(' ');
    await writeFile(join(mallory.home, 'pins'), `${host} ${type} ${blob}\n`);
    const r = await mallory.run([
      'ssh',
      '-i',
      op.keyPath,
      '--known-hosts',
      join(mallory.home, 'pins'),
      'debug',
      '--',
      'true',
    ]);
    assert.equal(r.status, 255, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^error: HOST KEY MISMATCH for ${host.replaceAll('.', '\\.')}: it presented SHA256:\\S+, but .*pins has SHA256:\\S+ \\(line 1\\)`,
      ),
    );
    assert.match(r.stderr, /ssh-keygen -R /);
  });
});
