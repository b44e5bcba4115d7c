import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { UsageError } from '../../src/lib/errors.ts';
import { inClusterConnection, kubeconfigPaths, loadKubeconfig } from '../../src/lib/kube/kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'krun-kubeconfig-'));
function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const cluster = (name: string, server: string, extra = {}) => ({ name, cluster: { server, ...extra } });

describe('loadKubeconfig', () => {
  test('merges files first-wins, resolves relative paths against their file, and uses the current context', async () => {
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    const a = file('a.yaml', {
      'current-context': 'one',
      contexts: [{ name: 'one', context: { cluster: 'c1', user: 'u1', namespace: 'team' } }],
      clusters: [cluster('c1', 'https://one:6443', { 'certificate-authority': 'ca.pem' })],
      users: [{ name: 'u1', user: { token: 'first' } }],
    });
    const b = file('b.yaml', {
      'current-context': 'two',
      contexts: [{ name: 'two', context: { cluster: 'c1', user: 'u2' } }],
      clusters: [cluster('c1', 'https://ignored:1')],
      users: [
        {
          name: 'u2',
          user: { 'client-certificate-data': Buffer.from('CERT').toString('base64'), 'client-key': 'k.pem' },
        },
      ],
    });
    writeFileSync(join(dir, 'k.pem'), 'KEY');
    const one = await loadKubeconfig([a, b]);
    assert.deepEqual(
      { server: one?.server, ca: one?.ca, token: one?.token, namespace: one?.namespace },
      { server: 'https://one:6443', ca: 'CA', token: 'first', namespace: 'team' },
    );
    const two = await loadKubeconfig([a, b], 'two');
    assert.deepEqual([two?.server, two?.clientCert, two?.clientKey], ['https://one:6443', 'CERT', 'KEY']);
  });

  test('no file is "not configured"; a missing context or an exec user is a usage error', async () => {
    assert.equal(await loadKubeconfig([join(dir, 'absent')]), undefined);
    const a = file('c.yaml', {
      'current-context': 'gke',
      contexts: [{ name: 'gke', context: { cluster: 'c', user: 'u' } }],
      clusters: [cluster('c', 'https://gke')],
      users: [{ name: 'u', user: { exec: { command: 'gke-gcloud-auth-plugin' } } }],
    });
    await assert.rejects(
      loadKubeconfig([a], 'nope'),
      (e: Error) => e instanceof UsageError && /context "nope" is not in/.test(e.message),
    );
    await assert.rejects(
      loadKubeconfig([a]),
      (e: UsageError) =>
        /authenticates with an exec plugin gke-gcloud-auth-plugin, which krun does not execute/.test(e.message) &&
        e.hints[0] ===
          'krun kubeconfig --merge   # a context with a token from your Google credentials, for a GKE cluster',
    );
    // Every usage error says what to do (setup commands, fn run and doctor share this loader with krun run).
    await assert.rejects(
      loadKubeconfig([join(dir, 'absent')], 'prod'),
      (e: UsageError) => /no kubeconfig file exists/.test(e.message) && e.hints.includes('--kubeconfig PATH'),
    );
    const bare = file('bare.yaml', { contexts: [{ name: 'x', context: { cluster: 'c' } }] });
    await assert.rejects(
      loadKubeconfig([bare]),
      (e: UsageError) => /has no current-context/.test(e.message) && e.hints[0] === '--context NAME',
    );
    await assert.rejects(loadKubeconfig([file('bad.yaml', 'a: [')]), /is not valid YAML/);
  });

  test('KUBECONFIG lists files like kubectl; without it, ~/.kube/config', () => {
    assert.deepEqual(kubeconfigPaths('/a:/b::', '/home/u'), ['/a', '/b']);
    assert.deepEqual(kubeconfigPaths(undefined, '/home/u'), ['/home/u/.kube/config']);
  });

  test('in-cluster: the Pod service account files and KUBERNETES_SERVICE_HOST/PORT', async () => {
    writeFileSync(join(dir, 'token'), 'tok');
    writeFileSync(join(dir, 'namespace'), 'prod\n');
    assert.equal(await inClusterConnection({}, dir), undefined);
    const c = await inClusterConnection({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, dir);
    assert.deepEqual([c?.server, c?.tokenFile, c?.namespace], ['https://[fd00::1]:6443', join(dir, 'token'), 'prod']);
  });
});
