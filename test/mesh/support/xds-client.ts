// Run as the app by `krun run` in proxyless mode: resolves TARGET (xds:///…) through the xDS server named in
// GRPC_XDS_BOOTSTRAP, calls Echo/Say with MESSAGE and prints the reply. Exits 1 with the error otherwise.
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { ECHO } from './echo.ts';

const [target, message] = process.argv.slice(2);
if (!target || message === undefined) {
  process.stderr.write('usage: xds-client.ts xds:///host:port MESSAGE\n');
  process.exit(2);
}
xds.register();
const client = new grpc.Client(target, grpc.credentials.createInsecure());
const say = ECHO.say as grpc.MethodDefinition<string, string>;
client.waitForReady(Date.now() + 20_000, (waitErr?: Error) => {
  if (waitErr) {
    process.stderr.write(`xds-client: ${target} not ready: ${waitErr.message}\n`);
    process.exit(1);
  }
  client.makeUnaryRequest(say.path, say.requestSerialize, say.responseDeserialize, message, (err, reply) => {
    if (err) {
      process.stderr.write(`xds-client: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${reply}\n`);
    client.close();
    process.exit(0);
  });
});
