import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { UsageError } from '../../src/lib/errors.ts';
import { formatObjects } from '../../src/lib/output/printer.ts';

const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'demo' } };
const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'krun' } };

describe('formatObjects', () => {
  test('json: one object as itself, several as a v1 List', async () => {
    assert.deepEqual(JSON.parse(await formatObjects([sa], 'json')), sa);
    assert.deepEqual(JSON.parse(await formatObjects([sa, role], 'json')), {
      apiVersion: 'v1',
      kind: 'List',
      items: [sa, role],
    });
  });

  test('yaml: the same shapes', async () => {
    assert.deepEqual(parse(await formatObjects([sa], 'yaml')), sa);
    assert.deepEqual(parse(await formatObjects([sa, role], 'yaml')).items, [sa, role]);
  });

  test("name: kubectl's kind[.group]/name lines", async () => {
    assert.equal(
      await formatObjects([sa, role], 'name'),
      'serviceaccount/default\nrole.rbac.authorization.k8s.io/krun\n',
    );
  });

  test('name: objects without kind or name are a usage error', async () => {
    await assert.rejects(formatObjects([{ krun: '1' }], 'name'), UsageError);
  });
});
