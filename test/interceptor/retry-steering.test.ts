/**
 * Acceptance of the retry interceptor with our pickers (which honour the skip
 * hook): a retry never lands on a replica the call already tried while another
 * is READY. Real servers on a static `ipv4:` target; policies from `register()`.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { register } from '../../src/register';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { type RetryEvent } from '../../src/interceptor/retry-options';
import { unary, type EchoClient } from '../support/echo-proto';
import { killAllReplicas, spawnReplica, type ReplicaProcess } from '../support/replica-process';
import { seededRandom, waitFor } from '../support/wait';
import { clientFor, runCalls, startReplicas, warmUp, type Replicas } from './replicas';

const POLICIES = ['etcd_least_request', 'etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_peak_ewma'];

describe('retry interceptor with the etcd_* pickers (skip hook)', function () {
  this.timeout(90_000);
  let replicas: Replicas | undefined;
  const clients: EchoClient[] = [];

  before(() => register());

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await replicas?.stop();
    replicas = undefined;
    await killAllReplicas();
  });

  function client(target: string, policy: string, events: RetryEvent[], extra: Parameters<typeof createRetryInterceptor>[0] = {}): EchoClient {
    const c = clientFor(target, policy, [createRetryInterceptor({ onRetry: e => events.push(e), random: seededRandom(11), ...extra })]);
    clients.push(c);
    return c;
  }

  for (const policy of POLICIES) {
    it(`${policy}: one replica of 3 always UNAVAILABLE, 1000 calls (20 in flight): zero failures, no second attempt on the failing replica`, async () => {
      replicas = await startReplicas(3);
      const events: RetryEvent[] = [];
      const c = client(replicas.target, policy, events);
      await warmUp(c, replicas);
      const bad = replicas.servers[0];
      bad.setBehaviour({ failRate: 1 });
      const { ok, errors } = await runCalls(1000, 20, () => unary(c, 'x', { deadline: Date.now() + 10_000 }));
      const third = events.filter(e => e.attempt > 2).length;
      console.log(`      ${policy}: ${ok} ok, ${errors.length} failed; ${events.length} retries, ${third} third attempts; failing replica saw ${bad.calls} attempts; others ${replicas.servers.slice(1).map(s => s.calls).join('/')}`);
      expect(errors.map(e => e.message)).to.deep.equal([]);
      // The failing replica fails every attempt it gets: had a second attempt landed there,
      // a third attempt would exist, and it would have seen more attempts than there were retries.
      expect(third).to.equal(0);
      expect(bad.calls).to.equal(events.length);
      expect(events.every(e => e.peer === bad.address)).to.equal(true);
      expect(replicas.previousAttempts.length).to.equal(events.length);
      expect(replicas.previousAttempts.every(v => v === '1')).to.equal(true);
      expect([...replicas.foreignKeys.keys()]).to.deep.equal([]);
    });
  }

  it('etcd_least_request: a replica kill -9\'d during a stream of calls costs zero failed calls', async () => {
    const procs: ReplicaProcess[] = [];
    for (let i = 0; i < 3; i++) procs.push(await spawnReplica({ name: `p${i}`, behaviour: { latencyMs: 5 } }));
    const events: RetryEvent[] = [];
    // Echo is idempotent: without isIdempotent, a call whose replica dies after sending its
    // response headers is committed (gRFC A6) and fails — about 1 run in 20 here.
    const c = client(`ipv4:${procs.map(p => p.address).join(',')}`, 'etcd_least_request', events, { isIdempotent: () => true });
    const servedBy = new Map<string, number>();
    await waitFor('all three replicas to serve', async () => {
      const reply = await unary(c, 'warm-up');
      servedBy.set(reply.server, 1);
      return servedBy.size === 3;
    }, { timeoutMs: 20_000 });
    servedBy.clear();
    let completed = 0;
    let killedAt = -1;
    const victim = procs[1];
    const { ok, errors } = await runCalls(1500, 10, async () => {
      const reply = await unary(c, 'x', { deadline: Date.now() + 10_000 });
      servedBy.set(reply.server, (servedBy.get(reply.server) ?? 0) + 1);
      if (++completed === 300) {
        killedAt = completed;
        void victim.kill();
      }
    });
    const codes = new Map<number, number>();
    for (const e of events) codes.set(e.status.code, (codes.get(e.status.code) ?? 0) + 1);
    console.log(`      kill -9 after ${killedAt} calls: ${ok} ok, ${errors.length} failed; ${events.length} retries (codes ${JSON.stringify(Object.fromEntries(codes))}); served by ${JSON.stringify(Object.fromEntries(servedBy))}`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(victim.child.signalCode).to.equal('SIGKILL');
    expect(events.every(e => e.attempt === 2)).to.equal(true);
  });

  it('etcd_least_request: a hung replica with perAttemptTimeoutMs costs one attempt per call that meets it', async () => {
    replicas = await startReplicas(3);
    const events: RetryEvent[] = [];
    const c = client(replicas.target, 'etcd_least_request', events, { perAttemptTimeoutMs: 1000 });
    await warmUp(c, replicas);
    const hung = replicas.servers[2];
    hung.setBehaviour({ hang: true });
    const { ok, errors } = await runCalls(200, 10, () => unary(c, 'x', { deadline: Date.now() + 10_000 }));
    console.log(`      hung replica: ${ok} ok, ${errors.length} failed; ${events.length} attempts timed out, all on the hung replica: ${events.every(e => e.peer === hung.address)}`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(events.length).to.be.greaterThan(0);
    expect(events.every(e => e.attemptTimedOut && e.attempt === 2 && e.peer === hung.address)).to.equal(true);
    await waitFor('the hung replica to see every timed-out attempt cancelled', () => hung.inFlight === 0);
  });

  it('with no other READY replica the retry reuses the tried one (after backoff)', async () => {
    replicas = await startReplicas(1, () => ({ failRate: 1 }));
    const events: RetryEvent[] = [];
    const c = client(replicas.target, 'etcd_least_request', events);
    const err = await unary(c).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).to.equal(grpc.status.UNAVAILABLE);
    expect(replicas.servers[0].calls).to.equal(3);
    expect(events.map(e => e.peer)).to.deep.equal([replicas.servers[0].address, replicas.servers[0].address]);
    expect(replicas.previousAttempts).to.deep.equal(['1', '2']);
  });

  it('concurrent calls sharing one Metadata object keep separate tried-sets: zero failures', async () => {
    replicas = await startReplicas(3);
    const events: RetryEvent[] = [];
    const c = client(replicas.target, 'etcd_weighted_round_robin', events);
    await warmUp(c, replicas);
    replicas.servers[1].setBehaviour({ failRate: 1 });
    const shared = new grpc.Metadata();
    shared.set('x-test-user', 'alice');
    const { errors } = await runCalls(300, 30, () => unary(c, 'm', {}, shared));
    console.log(`      300 calls sharing one Metadata, 30 in flight: ${errors.length} failed, ${events.length} retries`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(events.every(e => e.attempt === 2)).to.equal(true);
    expect(shared.getOptions()).to.deep.equal({});
    expect([...replicas.foreignKeys.keys()]).to.deep.equal([]);
  });
});
