/**
 * The retry interceptor's call lifecycle on real servers: cancellation, server
 * streams (retried only before the first response), streaming pass-through, the
 * retry budget under a total outage, metadata reuse.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { type RetryEvent } from '../../src/interceptor/retry-options';
import { loadEcho, unary, type EchoReply, type StreamRequest } from '../support/echo-proto';
import { seededRandom, waitFor } from '../support/wait';
import { clientFor, runCalls, startReplicas, warmUp, type Replicas } from './replicas';

/** Collects a server stream; resolves to its messages, or rejects with the call's error (and the messages seen). */
function collect(stream: grpc.ClientReadableStream<EchoReply>): Promise<EchoReply[]> {
  return new Promise((resolve, reject) => {
    const messages: EchoReply[] = [];
    stream.on('data', (m: EchoReply) => messages.push(m));
    stream.on('error', (err: grpc.ServiceError) => reject(Object.assign(err, { messages })));
    stream.on('end', () => resolve(messages));
  });
}

/** Resolves after `ms`: only to watch that something does NOT happen for a while. */
const observe = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));

describe('retry interceptor: call lifecycle', function () {
  this.timeout(60_000);
  let replicas: Replicas | undefined;
  const closers: (() => void)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await replicas?.stop();
    replicas = undefined;
  });

  function track<C extends { close(): void }>(c: C): C {
    closers.push(() => c.close());
    return c;
  }

  it('cancelling during the backoff stops the call: no further attempt reaches any server', async () => {
    replicas = await startReplicas(2, () => ({ failRate: 1 }));
    const backoffMs = 400;
    let call: grpc.ClientUnaryCall | undefined;
    const events: RetryEvent[] = [];
    const client = track(clientFor(replicas.target, 'round_robin', [createRetryInterceptor({
      initialBackoffMs: backoffMs / 0.99, maxBackoffMs: 10_000, random: () => 0.99,
      onRetry: e => { events.push(e); setImmediate(() => call!.cancel()); },
    })]));
    const result = new Promise<grpc.ServiceError | null>(resolve => {
      call = client.unary({ message: 'x' }, (err: grpc.ServiceError | null) => resolve(err));
    });
    const err = await result;
    expect(err?.code).to.equal(grpc.status.CANCELLED);
    expect(events.map(e => e.delayMs)).to.deep.equal([backoffMs]);
    const before = replicas.totalCalls();
    await observe(3 * backoffMs);
    console.log(`      cancelled in a ${backoffMs} ms backoff: attempts ${before}, ${3 * backoffMs} ms later still ${replicas.totalCalls()}`);
    expect(before).to.equal(1);
    expect(replicas.totalCalls()).to.equal(1);
  });

  it('cancelling during an attempt cancels it on the server and starts no other', async () => {
    replicas = await startReplicas(3, () => ({ hang: true }));
    const client = track(clientFor(replicas.target, 'round_robin', [createRetryInterceptor({ initialBackoffMs: 0, maxBackoffMs: 0 })]));
    let done: grpc.ServiceError | null | undefined;
    const call = client.unary({ message: 'x' }, (err: grpc.ServiceError | null) => { done = err; });
    await waitFor('the attempt to reach a server', () => replicas!.servers.some(s => s.inFlight === 1));
    call.cancel();
    await waitFor('the call to end', () => done !== undefined);
    expect(done?.code).to.equal(grpc.status.CANCELLED);
    const ms = await waitFor('the server to see the cancellation', () => replicas!.servers.every(s => s.inFlight === 0));
    await observe(300);
    console.log(`      server saw the cancellation ${ms} ms after the call ended; attempts: ${replicas.totalCalls()}`);
    expect(replicas.totalCalls()).to.equal(1);
  });

  it('server streaming: a failure before the first message is retried elsewhere, and the stream completes', async () => {
    replicas = await startReplicas(3);
    const events: RetryEvent[] = [];
    const client = track(clientFor(replicas.target, 'round_robin', [createRetryInterceptor({ onRetry: e => events.push(e), random: seededRandom(4) })]));
    await warmUp(client, replicas);
    replicas.servers[0].setBehaviour({ failRate: 1 });
    const { ok, errors } = await runCalls(30, 1, async () => {
      const messages = await collect(client.serverStream({ message: 's', count: 3 }));
      expect(messages.map(m => m.index)).to.deep.equal([0, 1, 2]);
      expect(new Set(messages.map(m => m.server)).size).to.equal(1);
      expect(messages[0].server).to.not.equal('r0');
    });
    console.log(`      server streams: ${ok} ok, ${errors.length} failed, ${events.length} retried`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(events.length).to.equal(replicas.servers[0].calls);
    expect(events.length).to.be.greaterThan(0);
    expect(events.every(e => e.method === '/grpc_etcd_lb.echo.Echo/ServerStream')).to.equal(true);
  });

  it('server streaming: never retried once headers or a message arrived', async () => {
    const { service } = loadEcho();
    const server = new grpc.Server();
    let calls = 0;
    server.addService(service, {
      Unary: (_call: unknown, cb: grpc.sendUnaryData<EchoReply>) => cb(null, { message: '', server: 'custom', index: 0 }),
      ServerStream: (call: grpc.ServerWritableStream<StreamRequest, EchoReply>) => {
        calls++;
        if (call.request.message === 'after-headers') call.sendMetadata(new grpc.Metadata());
        else call.write({ message: 'first', server: 'custom', index: 0 });
        setTimeout(() => call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'broke mid-stream' }), 20);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    closers.push(() => server.forceShutdown());
    const client = track(clientFor(`ipv4:127.0.0.1:${port}`, 'pick_first', [createRetryInterceptor({ initialBackoffMs: 0 })]));

    const afterMessage = await collect(client.serverStream({ message: 'after-message' })).catch((e: grpc.ServiceError & { messages: EchoReply[] }) => e);
    expect((afterMessage as grpc.ServiceError).code).to.equal(grpc.status.UNAVAILABLE);
    expect((afterMessage as unknown as { messages: EchoReply[] }).messages.map(m => m.message)).to.deep.equal(['first']);
    expect(calls).to.equal(1);

    const afterHeaders = await collect(client.serverStream({ message: 'after-headers' })).catch((e: grpc.ServiceError) => e);
    expect((afterHeaders as grpc.ServiceError).code).to.equal(grpc.status.UNAVAILABLE);
    expect(calls).to.equal(2);
  });

  it('client-streaming and bidi-streaming calls pass through untouched: one attempt, no retry', async () => {
    replicas = await startReplicas(1, () => ({ failRate: 1 }));
    const { service } = loadEcho();
    // The echo server's unary and server-stream handlers, called as client-/bidi-streaming methods.
    const Streaming = grpc.makeGenericClientConstructor({
      Upload: { ...service.Unary, requestStream: true },
      Chat: { ...service.ServerStream, requestStream: true },
    }, 'Echo');
    const events: RetryEvent[] = [];
    const client = track(new Streaming(replicas.target, grpc.credentials.createInsecure(), {
      interceptors: [createRetryInterceptor({ onRetry: e => events.push(e) })],
    }));
    const upload = await new Promise<grpc.ServiceError | null>(resolve => {
      const call = client.makeClientStreamRequest('/grpc_etcd_lb.echo.Echo/Unary', service.Unary.requestSerialize, service.Unary.responseDeserialize,
        (err: grpc.ServiceError | null) => resolve(err));
      call.write({ message: 'up' });
      call.end();
    });
    expect(upload?.code).to.equal(grpc.status.UNAVAILABLE);
    const chat = await new Promise<grpc.ServiceError | null>(resolve => {
      const call = client.makeBidiStreamRequest('/grpc_etcd_lb.echo.Echo/ServerStream', service.ServerStream.requestSerialize, service.ServerStream.responseDeserialize);
      call.on('data', () => undefined);
      call.on('error', (err: grpc.ServiceError) => resolve(err));
      call.on('end', () => resolve(null));
      call.write({ message: 'hi', count: 1 });
      call.end();
    });
    expect(chat?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(replicas.totalCalls()).to.equal(2);
    expect(events).to.deep.equal([]);
    expect(replicas.previousAttempts).to.deep.equal([]);
  });

  it('total outage: attempts per call ≤ maxAttempts, and one attempt per call once the budget is drained', async () => {
    replicas = await startReplicas(3, () => ({ failRate: 1 }));
    const perCall: number[] = [];
    let current = 1;
    const client = track(clientFor(replicas.target, 'round_robin', [createRetryInterceptor({
      initialBackoffMs: 0, maxBackoffMs: 0, onRetry: e => { current = e.attempt; },
    })]));
    const phase = async (calls: number): Promise<number> => {
      const before = replicas!.totalCalls();
      const { ok } = await runCalls(calls, 1, async () => {
        current = 1;
        try {
          await unary(client);
        } finally {
          perCall.push(current);
        }
      });
      expect(ok).to.equal(0);
      return replicas!.totalCalls() - before;
    };
    const draining = await phase(100);
    const drained = await phase(400);
    const total = draining + drained;
    console.log(`      total outage: first 100 calls ${draining} attempts, next 400 calls ${drained} attempts; overall ${total}/500 = ${(total / 500).toFixed(3)} per call`);
    expect(Math.max(...perCall)).to.be.at.most(3);
    // One token per failed call: 49 calls retried twice (tokens 99..51), then one attempt per call.
    expect(draining - 100).to.be.at.most(98);
    expect(drained).to.be.at.most(1.1 * 400);
    expect(total).to.be.at.most(1.2 * 500);
  });

  it('reusing one Metadata object for concurrent retried calls keeps each call intact and leaks nothing', async () => {
    replicas = await startReplicas(3);
    const client = track(clientFor(replicas.target, 'round_robin', [createRetryInterceptor({ random: seededRandom(9) })]));
    await warmUp(client, replicas);
    replicas.servers[2].setBehaviour({ failRate: 1 });
    const shared = new grpc.Metadata();
    shared.set('x-test-user', 'alice');
    const seen: string[] = [];
    const { errors } = await runCalls(60, 12, () => unary(client, 'm', {}, shared));
    for (const s of replicas.servers) seen.push(`${s.name}:${s.calls}`);
    // round_robin ignores the skip hook: under concurrency a retry can land on the bad replica again.
    console.log(`      round_robin, 60 calls sharing one Metadata, 12 in flight: ${errors.length} failed; attempts ${seen.join(' ')}`);
    expect([...replicas.foreignKeys.keys()]).to.deep.equal([]);
    expect(shared.getMap()).to.deep.equal({ 'x-test-user': 'alice' });
    expect(shared.getOptions()).to.deep.equal({});
  });
});
