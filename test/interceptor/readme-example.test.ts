/**
 * The README's retry section, compiled and run: keep the two in sync.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor, register, type RetryEvent } from 'grpc-etcd-lb';
import { loadEcho, unary } from '../support/echo-proto';
import { startReplicas, type Replicas } from './replicas';

describe('README: retry interceptor example', () => {
  let replicas: Replicas | undefined;
  let client: grpc.Client | undefined;
  afterEach(async () => {
    client?.close();
    await replicas?.stop();
  });

  it('runs as written', async () => {
    replicas = await startReplicas(3, i => (i === 0 ? { failRate: 1 } : {}));
    const target = replicas.target; // in the README: 'etcd:///echo'
    const { Client: EchoClient } = loadEcho();
    const retries: RetryEvent[] = [];
    const metrics = { retries: { inc: (e: RetryEvent) => retries.push(e) } };

    // --- README example starts ---
    register();
    const echo = new EchoClient(target, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ etcd_least_request: {} }] }),
      interceptors: [
        createRetryInterceptor({
          maxAttempts: 3, // counts the first attempt
          perAttemptTimeoutMs: 2000, // a hung replica costs one attempt, not the deadline
          shouldRetry: method => !method.endsWith('/Charge'), // keep non-idempotent methods single-shot
          onRetry: event => metrics.retries.inc(event),
        }),
      ],
    });
    // --- README example ends ---
    client = echo;

    for (let i = 0; i < 30; i++) await unary(echo, 'hi', { deadline: Date.now() + 5000 });
    expect(retries.every(e => e.peer === replicas!.servers[0].address && e.attempt === 2)).to.equal(true);
  });
});
