// A gRPC service without .proto files: one unary method whose messages are UTF-8 strings. The test's server
// answers `<name> heard <message>`; the xDS client (xds-client.ts) runs as the app under `krun run`.
import type { ServiceDefinition } from '@grpc/grpc-js';

const text = {
  requestStream: false,
  responseStream: false,
  requestSerialize: (s: string) => Buffer.from(s, 'utf8'),
  requestDeserialize: (b: Buffer) => b.toString('utf8'),
  responseSerialize: (s: string) => Buffer.from(s, 'utf8'),
  responseDeserialize: (b: Buffer) => b.toString('utf8'),
} as const;

export const ECHO: ServiceDefinition = { say: { path: '/krun.test.Echo/Say', ...text } };
