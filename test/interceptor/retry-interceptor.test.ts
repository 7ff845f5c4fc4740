/**
 * The retry interceptor against real grpc-js servers, under grpc-js's own LB
 * policies (round_robin, pick_first): what retries do when the policy ignores
 * the skip hook, and that nothing internal reaches a server.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { type RetryEvent, type RetryOptions } from '../../src/interceptor/retry-options';
import { unary, type EchoClient } from '../support/echo-proto';
import { seededRandom, waitFor } from '../support/wait';
import { clientFor, runCalls, startReplicas, warmUp, type Replicas } from './replicas';

const UNARY_PATH = '/grpc_etcd_lb.echo.Echo/Unary';

describe('retry interceptor with grpc-js policies', function () {
  this.timeout(60_000);
  let replicas: Replicas | undefined;
  let client: EchoClient | undefined;

  afterEach(async () => {
    client?.close();
    client = undefined;
    await replicas?.stop();
    replicas = undefined;
  });

  /** Starts `count` healthy replicas and a round_robin client with every subchannel READY. */
  async function roundRobin(count: number, options: RetryOptions): Promise<{ replicas: Replicas; client: EchoClient }> {
    replicas = await startReplicas(count);
    client = clientFor(replicas.target, 'round_robin', [createRetryInterceptor(options)]);
    await warmUp(client, replicas);
    return { replicas, client };
  }

  it('round_robin: one replica of 3 always UNAVAILABLE, 300 sequential calls, zero failures, each retry on the next replica', async () => {
    const events: RetryEvent[] = [];
    const { replicas, client } = await roundRobin(3, { onRetry: e => events.push(e), random: seededRandom(1) });
    const bad = replicas.servers[1];
    bad.setBehaviour({ failRate: 1 });
    const servedBy = new Map<string, number>();
    const { ok, errors } = await runCalls(300, 1, async () => {
      const reply = await unary(client, 'x', {}, new grpc.Metadata());
      servedBy.set(reply.server, (servedBy.get(reply.server) ?? 0) + 1);
    });
    console.log(`      round_robin: ${ok} ok, ${errors.length} failed, ${events.length} retries, bad replica saw ${bad.calls} attempts, served by ${JSON.stringify(Object.fromEntries(servedBy))}`);
    expect(errors).to.deep.equal([]);
    expect(events.length).to.equal(bad.calls);
    expect(events.every(e => e.attempt === 2 && e.peer === bad.address)).to.equal(true);
    expect(servedBy.has(bad.name)).to.equal(false);
    expect(replicas.previousAttempts.filter(v => v === '1').length).to.equal(events.length);
    expect([...replicas.foreignKeys.keys()]).to.deep.equal([]);
  });

  it('pick_first: retries stay on the one picked replica, maxAttempts in all, with grpc-previous-rpc-attempts', async () => {
    replicas = await startReplicas(2, i => (i === 0 ? { failRate: 1 } : {}));
    const events: RetryEvent[] = [];
    client = clientFor(replicas.target, 'pick_first', [createRetryInterceptor({ maxAttempts: 3, onRetry: e => events.push(e), random: seededRandom(2) })]);
    const err = await unary(client).then(() => undefined, (e: grpc.ServiceError) => e);
    const [first, second] = replicas.servers;
    console.log(`      pick_first: attempts on first replica ${first.calls}, on second ${second.calls}, previous-attempts headers ${JSON.stringify(replicas.previousAttempts)}`);
    expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(first.calls).to.equal(3);
    expect(second.calls).to.equal(0);
    expect(replicas.previousAttempts).to.deep.equal(['1', '2']);
    expect(err?.metadata.get('grpc-previous-rpc-attempts')).to.deep.equal(['2']);
    expect(events.map(e => [e.attempt, e.peer, e.method])).to.deep.equal([[2, first.address, UNARY_PATH], [3, first.address, UNARY_PATH]]);
    expect([...replicas.foreignKeys.keys()]).to.deep.equal([]);
  });

  it('makes exactly one attempt for a non-retryable code and when shouldRetry says no', async () => {
    const asked: [string, grpc.status][] = [];
    const { replicas, client } = await roundRobin(3, {
      shouldRetry: (method, status) => { asked.push([method, status.code]); return false; },
    });
    for (const s of replicas.servers) s.setBehaviour({ failRate: 1, failCode: grpc.status.INTERNAL });
    const internal = await unary(client).catch((e: grpc.ServiceError) => e);
    expect((internal as grpc.ServiceError).code).to.equal(grpc.status.INTERNAL);
    expect(replicas.totalCalls()).to.equal(1);
    expect(asked).to.deep.equal([]); // shouldRetry only narrows retryable codes

    for (const s of replicas.servers) s.setBehaviour({ failRate: 1 });
    const unavailable = await unary(client).catch((e: grpc.ServiceError) => e);
    expect((unavailable as grpc.ServiceError).code).to.equal(grpc.status.UNAVAILABLE);
    expect(replicas.totalCalls()).to.equal(2);
    expect(asked).to.deep.equal([[UNARY_PATH, grpc.status.UNAVAILABLE]]);
  });

  it('honours grpc-retry-pushback-ms: a delay replaces the backoff, a negative value stops retrying', async () => {
    const events: RetryEvent[] = [];
    const { replicas, client } = await roundRobin(3, { initialBackoffMs: 5, onRetry: e => events.push(e) });
    for (const s of replicas.servers) s.setBehaviour({ failRate: 1, pushbackMs: -1 });
    await unary(client).catch(() => undefined);
    expect(replicas.totalCalls()).to.equal(1);
    expect(events).to.have.length(0);

    for (const s of replicas.servers) s.setBehaviour({ failRate: 1, pushbackMs: 150 });
    await unary(client).catch(() => undefined);
    expect(replicas.totalCalls()).to.equal(1 + 3);
    expect(events.map(e => e.delayMs)).to.deep.equal([150, 150]);
  });

  it('never sleeps past the deadline: a backoff longer than the time left ends the call with the real failure', async () => {
    const events: RetryEvent[] = [];
    const { replicas, client } = await roundRobin(3, { initialBackoffMs: 10_000, maxBackoffMs: 10_000, random: () => 0.9, onRetry: e => events.push(e) });
    for (const s of replicas.servers) s.setBehaviour({ failRate: 1 });
    const started = Date.now();
    const err = await unary(client, 'x', { deadline: Date.now() + 2000 }).catch((e: grpc.ServiceError) => e);
    const elapsedMs = Date.now() - started;
    console.log(`      deadline 2000 ms, backoff would be 9000 ms: failed after ${elapsedMs} ms with code ${(err as grpc.ServiceError).code}`);
    expect((err as grpc.ServiceError).code).to.equal(grpc.status.UNAVAILABLE);
    expect(replicas.totalCalls()).to.equal(1);
    expect(events).to.have.length(0);
  });

  it('perAttemptTimeoutMs: a hung replica costs one attempt, calls succeed elsewhere', async () => {
    const events: RetryEvent[] = [];
    // 700 ms per attempt: generous where a healthy attempt competes with CPU hogs (300 ms was not);
    // one call at a time, so that under round_robin a retry is the next replica, never the hung one
    // again (with concurrent calls it can be, which would test round_robin, not the timeout).
    const { replicas, client } = await roundRobin(3, { perAttemptTimeoutMs: 700, onRetry: e => events.push(e) });
    const hung = replicas.servers[0];
    hung.setBehaviour({ hang: true });
    const { ok, errors } = await runCalls(30, 1, () => unary(client, 'x', { deadline: Date.now() + 10_000 }));
    console.log(`      hung replica: ${ok} ok, ${errors.length} failed, ${events.filter(e => e.attemptTimedOut).length} attempts timed out, hung replica saw ${hung.calls}`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(events.length).to.be.greaterThan(0);
    expect(events.every(e => e.attemptTimedOut && e.status.code === grpc.status.DEADLINE_EXCEEDED)).to.equal(true);
    // The server saw each timed-out attempt cancelled.
    await waitFor('the hung replica to see its attempts cancelled', () => hung.inFlight === 0);
  });
});
