/**
 * A minimal client: discover `echo` replicas in etcd, balance by least outstanding
 * requests, retry failed calls on a different replica.
 *
 *   ETCD_ENDPOINTS=127.0.0.1:2379 npx tsx examples/client.ts
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { createRetryInterceptor, register } from 'grpc-etcd-lb';

export interface EchoReply { message: string; server: string }

export function createExampleClient(): { call(message: string): Promise<EchoReply>; close(): void } {
  // Once, before any channel is created: installs the etcd:// resolver and the etcd_* policies.
  register();

  const def = protoLoader.loadSync(join(__dirname, '..', 'protos', 'echo.proto'));
  const { Echo } = (grpc.loadPackageDefinition(def) as unknown as {
    grpc_etcd_lb: { echo: { Echo: grpc.ServiceClientConstructor } };
  }).grpc_etcd_lb.echo;

  const client = new Echo('etcd:///echo', grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({
      loadBalancingConfig: [{ etcd_least_request: { choiceCount: 2 } }],
    }),
    interceptors: [createRetryInterceptor({ maxAttempts: 3 })],
  });

  return {
    call: message => new Promise((resolve, reject) => {
      client.unary({ message }, { deadline: Date.now() + 2000 }, (err: grpc.ServiceError | null, reply: EchoReply) =>
        (err ? reject(err) : resolve(reply)));
    }),
    close: () => client.close(),
  };
}

if (require.main === module) {
  const client = createExampleClient();
  void (async () => {
    for (let i = 0; i < 10; i++) {
      const reply = await client.call(`hello ${i}`);
      console.log(`${reply.message} ← ${reply.server}`);
    }
    client.close();
  })().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
