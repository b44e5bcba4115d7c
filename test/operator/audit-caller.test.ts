// Who opened a tunnel, behind Cloud Run: `krun hbone` with the operator's ID token through the emulated front end,
// which checks it against IAM and forwards it to the container without its signature. The HBONE server takes the
// caller from those claims only when told the front end is the sole way in; its audit events say who vouched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAudit } from '../../src/lib/audit/audit.ts';
import { startHboneServer } from '../../src/lib/hbone/server.ts';
import { TargetTable } from '../../src/lib/hbone/targets.ts';
import { echo, memoryLogger, startTarget } from '../hbone/support.ts';
import { freePort } from '../support/control-plane/ports.ts';
import { OPERATOR, operator, world } from './support.ts';

const w = await world('audit-caller');
const op = await operator(w);
const target = await startTarget(echo);
w.cleanup(() => target.close());
const closedPort = await freePort();

/** An HBONE server deployed as Cloud Run service `name`; returns its audit events so far and its URL. */
async function service(name: string, trustFrontEndIdentity: boolean) {
  const { log, lines } = memoryLogger();
  const server = await startHboneServer({
    listen: { host: '127.0.0.1', port: 0 },
    targets: new TargetTable({
      sshPort: null,
      named: { echo: `127.0.0.1:${target.port}`, closed: `127.0.0.1:${closedPort}` },
    }),
    log,
    audit: createAudit({ log }),
    trustFrontEndIdentity,
  });
  w.cleanup(() => server.close());
  const svc = w.gcp.state.addRunService({ name, backendPort: server.address.port, http2: true });
  w.gcp.state.grant(w.gcp.state.runServiceName(svc), 'roles/run.invoker', OPERATOR);
  const url = w.gcp.state.runServiceUrls(svc)[0] as string;
  return {
    url,
    events: () => lines().filter((l) => typeof l.audit === 'string'),
    whenIdle: () => server.whenIdle(),
  };
}

test('on Cloud Run tunnel events name the caller its front end verified, elsewhere not; refusals are audited', async () => {
  // Given one server trusting the front end's identity (as on Cloud Run) and one not
  const [trusting, other] = [await service('trusting', true), await service('other', false)];
  for (const svc of [trusting, other]) {
    // When the operator tunnels through the front end with an ID token for the service
    const r = await op.run(['hbone', `${svc.url}/_hbone/echo`], { input: 'ping' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ping');
    await svc.whenIdle();
  }
  // Then the trusting server's events name the operator, vouched for by Cloud Run, with the client's address
  assert.deepEqual(
    trusting.events().map((l) => [l.audit, l.caller, l.callerVerifiedBy, l.forwardedFor, l.bytesIn, l.bytesOut]),
    [
      ['tunnel.open', OPERATOR, 'cloud-run', '127.0.0.1', undefined, undefined],
      ['tunnel.close', OPERATOR, 'cloud-run', '127.0.0.1', 4, 4],
    ],
  );
  // And the other server, not behind a front end it trusts, does not take the unsigned claims for an identity
  assert.deepEqual(
    other.events().map((l) => [l.audit, l.caller]),
    [
      ['tunnel.open', undefined],
      ['tunnel.close', undefined],
    ],
  );
  // When tunnels are asked for a target not on the allow-list, and for one where nothing listens
  for (const name of ['9999', 'closed']) {
    const r = await op.run(['hbone', `${trusting.url}/_hbone/${name}`], { input: '' });
    assert.equal(r.status, 255, r.stderr);
  }
  // Then both refusals are audit events with the status the client got
  assert.deepEqual(
    trusting
      .events()
      .filter((l) => l.audit === 'tunnel.refused')
      .map((l) => [l.target, l.status, String(l.reason).split(':')[0]]),
    [
      ['9999', 404, 'target not allowed'],
      ['closed', 502, 'target unreachable'],
    ],
  );
});
