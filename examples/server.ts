/**
 * A minimal server: serve Echo, announce it in etcd, leave gracefully on SIGTERM/SIGINT.
 *
 *   ETCD_ENDPOINTS=127.0.0.1:2379 npx tsx examples/server.ts 127.0.0.1:50051 [weight]
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { registerEndpoint, shutdownOnSignals } from 'grpc-etcd-lb';

export async function startExampleServer(address: string, weight = 1): Promise<{ server: grpc.Server; close(): Promise<void> }> {
  const def = protoLoader.loadSync(join(__dirname, '..', 'protos', 'echo.proto'));
  const { Echo } = (grpc.loadPackageDefinition(def) as unknown as {
    grpc_etcd_lb: { echo: { Echo: grpc.ServiceClientConstructor } };
  }).grpc_etcd_lb.echo;

  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<{ message: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, { message: call.request.message, server: address });
    },
  });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));

  // Announce host:port under the lease; re-registers by itself if the lease is lost.
  const registration = await registerEndpoint({ service: 'echo', address, weight });
  // SIGTERM (Kubernetes) → deregister, let clients notice, drain in-flight calls, stop.
  const disposeSignals = shutdownOnSignals(server, registration, { exitProcess: true });
  return {
    server,
    async close() {
      disposeSignals();
      await registration.close();
      server.forceShutdown();
    },
  };
}

if (require.main === module) {
  const [address = '127.0.0.1:50051', weight = '1'] = process.argv.slice(2);
  startExampleServer(address, Number(weight)).then(
    () => console.log(`echo server on ${address}, registered in etcd as echo/${address}`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
