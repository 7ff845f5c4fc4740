/**
 * Entry point of one counter replica in its own process (spawned by
 * test/idempotency/counter-replicas.ts), so that `kill -9` is real: the echo proto's Unary
 * behind `createIdempotencyInterceptor` with the etcd store, and, nearer the network, an
 * interceptor that loses a seeded share of OK answers after the handler ran.
 * Every execution is appended to `execLog` (synchronously: it survives a kill -9) as
 * `E <key>`, and `D <key>` once the status of a call the handler ran leaves our
 * interceptor (its result recorded, or released).
 */
import { appendFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { createEtcdIdempotencyStore, createIdempotencyInterceptor, registerEndpoint } from '../../src';
import { loadEcho, type EchoReply, type EchoRequest } from './echo-proto';
import { seededRandom } from './wait';

export interface CounterReplicaConfig {
  name: string;
  etcdHosts: string[];
  /** Store prefix (one per test). */
  prefix: string;
  claimTtlSeconds: number;
  /** Share of OK answers turned into UNAVAILABLE after the handler ran. */
  loseRatio: number;
  seed: number;
  /** Where executions are appended; '' for none (the bench). */
  execLog: string;
  /** The handler's work before it answers. */
  handlerDelayMs: number;
  /** Register under this service in etcd when set. */
  service?: string;
  /** Run the idempotency interceptor. Defaults to true (false: the bench's baseline). */
  dedup?: boolean;
}

export type CounterReplicaEvent = { type: 'ready'; address: string; pid: number } | { type: 'error'; message: string };

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as CounterReplicaConfig;
  const random = seededRandom(config.seed);
  const lose: grpc.ServerInterceptor = (_descriptor, call) => {
    let key = '';
    return new grpc.ServerInterceptingCall(call, {
      start: next => next({
        onReceiveMetadata: (metadata, forward) => {
          key = String(metadata.get('idempotency-key')[0] ?? '');
          forward(metadata);
        },
      }),
      sendStatus: (status, forward) => {
        const replayed = status.metadata?.get('idempotency-replayed')[0] === 'true';
        if (!replayed && key !== '' && config.execLog) appendFileSync(config.execLog, `D ${key}\n`);
        if (status.code === grpc.status.OK && random() < config.loseRatio) {
          forward({ code: grpc.status.UNAVAILABLE, details: 'response lost (test)', metadata: new grpc.Metadata() });
        } else {
          forward(status);
        }
      },
    });
  };
  const interceptors = config.dedup === false ? [] : [...(config.loseRatio > 0 ? [lose] : []), createIdempotencyInterceptor({
    store: createEtcdIdempotencyStore({ etcd: { hosts: config.etcdHosts }, prefix: config.prefix, claimTtlSeconds: config.claimTtlSeconds }),
  })];
  const server = new grpc.Server({ interceptors });
  let executions = 0;
  server.addService(loadEcho().service, {
    Unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      const key = String(call.metadata.get('idempotency-key')[0] ?? '');
      if (config.execLog) appendFileSync(config.execLog, `E ${key}\n`);
      const index = ++executions;
      const reply = (): void => callback(null, { message: call.request.message ?? '', server: config.name, index });
      // 'hang:<name>' never answers on that replica: the owner-death test kills it meanwhile.
      if (call.request.message === `hang:${config.name}`) return;
      if (config.handlerDelayMs > 0) setTimeout(reply, config.handlerDelayMs);
      else reply();
    },
    ServerStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => call.end(),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const address = `127.0.0.1:${port}`;
  if (config.service) await registerEndpoint({ service: config.service, address, etcd: { hosts: config.etcdHosts }, ttlSeconds: 2 });
  process.send?.({ type: 'ready', address, pid: process.pid } satisfies CounterReplicaEvent);
  // The parent going away must not leave an orphan replica behind.
  process.on('disconnect', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.send?.({ type: 'error', message: (err as Error)?.stack ?? String(err) } satisfies CounterReplicaEvent);
  process.exit(1);
});
