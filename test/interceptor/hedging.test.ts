/**
 * Hedging on real grpc-js servers: where hedges go (the servers record call ids),
 * that losers are cancelled, that the caller's deadline and cancellation end every
 * attempt, the budgets, what is never hedged, and the adaptive delay.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { register } from '../../src/register';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { type HedgeEvent } from '../../src/interceptor/hedging-options';
import { type RetryEvent, type RetryOptions } from '../../src/interceptor/retry-options';
import { type EchoClient, type EchoReply } from '../support/echo-proto';
import { waitFor } from '../support/wait';
import { callWithId, CALL_ID_KEY, resetRecord, startRecordingReplicas, warmUpRecording, type RecordingReplicas } from './hedge-fixtures';
import { clientFor, runCalls } from './replicas';

const POLICIES = ['etcd_least_request', 'etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_peak_ewma'];
const UNARY = '/grpc_etcd_lb.echo.Echo/Unary';
const onlyUnary = (method: string): boolean => method === UNARY;

/** Resolves after `ms`: only to watch that something does NOT happen for a while. */
const observe = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));

describe('retry interceptor: hedging', function () {
  this.timeout(90_000);
  let replicas: RecordingReplicas | undefined;
  const clients: EchoClient[] = [];

  before(() => register());

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await replicas?.stop();
    replicas = undefined;
  });

  function client(policy: string, options: RetryOptions, hedges: HedgeEvent[] = [], retries: RetryEvent[] = []): EchoClient {
    const c = clientFor(replicas!.target, policy, [createRetryInterceptor({
      isIdempotent: onlyUnary,
      onHedge: e => hedges.push(e),
      onRetry: e => retries.push(e),
      ...options,
    })]);
    clients.push(c);
    return c;
  }

  const warmUp = (c: EchoClient): Promise<void> => warmUpRecording(c, replicas!);

  for (const policy of POLICIES) {
    it(`${policy}: every copy of a call goes to a replica it has not tried (3 slow replicas, 3 copies, 60 calls)`, async () => {
      replicas = await startRecordingReplicas(3, () => ({ latencyMs: 80 }));
      const hedges: HedgeEvent[] = [];
      // Two hedges per call take 2 retry tokens; tokenRatio 2 gives them back with the winner's OK.
      const c = client(policy, { maxAttempts: 3, tokenRatio: 2, hedging: { delayMs: 5, maxAttempts: 3, maxHedgeRatio: 2 } }, hedges);
      await warmUp(c);
      hedges.length = 0;
      const { ok, errors } = await runCalls(60, 6, i => callWithId(c, `c${i}`));
      await waitFor('every attempt to end', () => replicas!.inFlight() === 0);
      const byCall = replicas.byCall();
      const twiceOnOne = [...byCall.values()].filter(servers => new Set(servers).size !== servers.length);
      console.log(`      ${policy}: ${ok} ok, ${errors.length} failed, ${hedges.length} hedges, ${replicas.arrivals.length} attempts, calls with two copies on one replica: ${twiceOnOne.length}`);
      expect(errors.map(e => e.message)).to.deep.equal([]);
      expect(byCall.size).to.equal(60);
      expect(twiceOnOne).to.deep.equal([]);
      expect([...byCall.values()].every(servers => servers.length === 3)).to.equal(true);
      expect(hedges.filter(h => !(h.reason === 'delay' && h.delayMs === 5 && h.method === UNARY)).slice(0, 3)).to.deep.equal([]);
      expect(hedges.map(h => h.attempt).sort()).to.deep.equal([...Array(60).fill(2), ...Array(60).fill(3)]);
      // The hedged attempt's replica is named (our pickers report it at pick time), and is not where the hedge went.
      expect(hedges.every(h => h.peer !== undefined)).to.equal(true);
      expect(replicas.arrivals.filter(a => a.previous > 0).map(a => a.previous).sort()).to.deep.equal([...Array(60).fill(1), ...Array(60).fill(2)]);
      expect([...replicas.foreignKeys]).to.deep.equal([]);
    });
  }

  it('the loser is cancelled: the server sees the cancel of a hung first attempt, the hedge answers', async () => {
    replicas = await startRecordingReplicas(2, i => (i === 0 ? { hang: true } : {}));
    const hedges: HedgeEvent[] = [];
    const c = client('etcd_weighted_round_robin', { hedging: { delayMs: 20, maxHedgeRatio: 1 } }, hedges);
    // The hung replica never answers a warm-up, so warm up on the healthy one and wait for both READY.
    const hung = replicas.servers[0];
    hung.setBehaviour({});
    await warmUp(c);
    hedges.length = 0;
    hung.setBehaviour({ hang: true });
    const replies: EchoReply[] = [];
    const { errors } = await runCalls(20, 1, async i => { replies.push(await callWithId(c, `l${i}`)); });
    // First attempts that hung on r0 (a hedge of a slow r1 attempt may land on r0 too).
    const onHung = replicas.arrivals.filter(a => a.server === 'r0' && a.previous === 0).length;
    const ms = await waitFor('the hung replica to see every attempt cancelled', () => hung.inFlight === 0);
    console.log(`      ${errors.length} failed; ${onHung} first attempts hung on r0, ${hedges.length} hedges; r0 saw all its attempts cancelled ${ms} ms after the last call`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(replies.every(r => r.server === 'r1')).to.equal(true);
    expect(onHung).to.be.greaterThan(0);
    expect(hedges.filter(h => h.peer === hung.address)).to.have.length(onHung);
  });

  it('the caller\'s deadline ends every attempt (3 copies on 3 hung replicas)', async () => {
    replicas = await startRecordingReplicas(3);
    const c = client('etcd_least_request', { maxAttempts: 3, tokenRatio: 2, hedging: { delayMs: 10, maxAttempts: 3, maxHedgeRatio: 2 } });
    await warmUp(c);
    for (const s of replicas.servers) s.setBehaviour({ hang: true });
    const started = Date.now();
    const err = await callWithId(c, 'deadline', { deadline: Date.now() + 400 }).catch((e: grpc.ServiceError) => e);
    const elapsed = Date.now() - started;
    const ms = await waitFor('every replica to see its attempt end', () => replicas!.inFlight() === 0);
    await observe(200);
    const attempts = replicas.byCall().get('deadline');
    console.log(`      failed after ${elapsed} ms with code ${(err as grpc.ServiceError).code}; attempts on ${JSON.stringify(attempts)}, all ended on the servers ${ms} ms later`);
    expect((err as grpc.ServiceError).code).to.equal(grpc.status.DEADLINE_EXCEEDED);
    expect(attempts?.sort()).to.deep.equal(['r0', 'r1', 'r2']);
  });

  it('the caller\'s cancellation ends every attempt and starts no other', async () => {
    replicas = await startRecordingReplicas(3);
    const c = client('etcd_least_request', { maxAttempts: 3, hedging: { delayMs: 10, maxAttempts: 2, maxHedgeRatio: 2 } });
    await warmUp(c);
    for (const s of replicas.servers) s.setBehaviour({ hang: true });
    const metadata = new grpc.Metadata();
    metadata.set(CALL_ID_KEY, 'cancel');
    let done: grpc.ServiceError | null | undefined;
    const call = c.unary({ message: 'x' }, metadata, (err: grpc.ServiceError | null) => { done = err; });
    await waitFor('the first attempt and its hedge to reach the servers', () => replicas!.byCall().get('cancel')?.length === 2);
    call.cancel();
    await waitFor('the call to end', () => done !== undefined);
    const ms = await waitFor('the servers to see both attempts cancelled', () => replicas!.inFlight() === 0);
    await observe(200);
    const attempts = replicas.byCall().get('cancel');
    console.log(`      cancelled with 2 attempts in flight: code ${done?.code}; servers saw both end ${ms} ms later; attempts on ${JSON.stringify(attempts)}`);
    expect(done?.code).to.equal(grpc.status.CANCELLED);
    expect(attempts).to.have.length(2);
  });

  it('the hedge budget stops hedging at maxHedgeRatio of calls (every call slow, 300 calls)', async () => {
    replicas = await startRecordingReplicas(3, () => ({ latencyMs: 30 }));
    const hedges: HedgeEvent[] = [];
    const c = client('etcd_least_request', { hedging: { delayMs: 2 } }, hedges);
    await warmUp(c);
    hedges.length = 0;
    const { errors } = await runCalls(300, 10, i => callWithId(c, `b${i}`));
    await waitFor('every attempt to end', () => replicas!.inFlight() === 0);
    console.log(`      300 calls, all slower than the delay: ${hedges.length} hedges (budget: 0.1 per call), ${replicas.arrivals.length} attempts`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    // The warm-up's calls deposited too (and hedged): at most their savings, 0.1 per call, + 1.
    expect(hedges.length).to.be.within(25, 30 + 1 + 2);
    expect(replicas.arrivals.length).to.be.at.most(300 + hedges.length);
  });

  it('a drained retry budget stops hedging', async () => {
    replicas = await startRecordingReplicas(3);
    const hedges: HedgeEvent[] = [];
    const c = client('etcd_least_request', { tokenRatio: 0.01, initialBackoffMs: 0, maxBackoffMs: 0, hedging: { delayMs: 2, maxHedgeRatio: 1 } }, hedges);
    await warmUp(c);
    for (const s of replicas.servers) s.setBehaviour({ failRate: 1 });
    const outage = await runCalls(100, 1, i => callWithId(c, `o${i}`));
    expect(outage.ok).to.equal(0);
    for (const s of replicas.servers) s.setBehaviour({ latencyMs: 20 });
    hedges.length = 0;
    resetRecord(replicas);
    const { errors } = await runCalls(50, 5, i => callWithId(c, `d${i}`));
    await waitFor('every attempt to end', () => replicas!.inFlight() === 0);
    console.log(`      after a total outage drained the retry budget: 50 slow calls, ${hedges.length} hedges, ${replicas.arrivals.length} attempts`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(hedges).to.deep.equal([]);
    expect(replicas.arrivals.length).to.equal(50);
  });

  it('a method isIdempotent does not name is never hedged; nor is a server stream', async () => {
    replicas = await startRecordingReplicas(3, () => ({ latencyMs: 30 }));
    const hedges: HedgeEvent[] = [];
    const c = client('etcd_least_request', { isIdempotent: m => m.endsWith('/Other'), hedging: { delayMs: 1, maxHedgeRatio: 1 } }, hedges);
    await warmUp(c);
    const { errors } = await runCalls(50, 5, i => callWithId(c, `n${i}`));
    const streams = clientFor(replicas.target, 'etcd_least_request', [createRetryInterceptor({
      isIdempotent: () => true, onHedge: e => hedges.push(e), hedging: { delayMs: 1, maxHedgeRatio: 1 },
    })]);
    clients.push(streams);
    for (let i = 0; i < 10; i++) {
      const metadata = new grpc.Metadata();
      metadata.set(CALL_ID_KEY, `s${i}`);
      await new Promise<void>((resolve, reject) => {
        const stream = streams.serverStream({ message: 's', count: 2 }, metadata);
        stream.on('data', () => undefined);
        stream.on('error', reject);
        stream.on('end', resolve);
      });
    }
    await waitFor('every attempt to end', () => replicas!.inFlight() === 0);
    const byCall = replicas.byCall();
    console.log(`      50 non-idempotent unary calls and 10 idempotent server streams, all slower than the delay: ${hedges.length} hedges, ${replicas.arrivals.length} attempts`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(hedges).to.deep.equal([]);
    expect(byCall.size).to.equal(60);
    expect([...byCall.values()].every(servers => servers.length === 1)).to.equal(true);
  });

  it('a retryable failure of one copy does not fail the call while another is in flight', async () => {
    replicas = await startRecordingReplicas(2);
    const hedges: HedgeEvent[] = [];
    const retries: RetryEvent[] = [];
    const c = client('etcd_weighted_round_robin', { maxAttempts: 2, hedging: { delayMs: 10, maxHedgeRatio: 1 } }, hedges, retries);
    await warmUp(c);
    hedges.length = 0;
    replicas.servers[0].setBehaviour({ latencyMs: 60 });
    replicas.servers[1].setBehaviour({ failRate: 1 });
    const replies: EchoReply[] = [];
    const { errors } = await runCalls(20, 1, async i => { replies.push(await callWithId(c, `f${i}`)); });
    console.log(`      r1 always failing, r0 slow: ${errors.length} failed, ${hedges.length} hedges (to r1, which failed), ${retries.length} retries`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(replies.every(r => r.server === 'r0')).to.equal(true);
    expect(hedges.length).to.be.greaterThan(0);
    expect(hedges.length + retries.length).to.equal(20);
  });

  it('the adaptive delay (p95 of first attempts) follows a latency change, up and down', async () => {
    replicas = await startRecordingReplicas(3, () => ({ latencyMs: 2 }));
    const hedges: HedgeEvent[] = [];
    let completed = 0;
    let firstHedgeAfter: number | undefined;
    const c = clientFor(replicas.target, 'etcd_least_request', [createRetryInterceptor({
      isIdempotent: onlyUnary,
      hedging: {},
      onHedge: event => {
        firstHedgeAfter ??= completed;
        hedges.push(event);
      },
    })]);
    clients.push(c);
    // 3 % of calls +300 ms (seeded) in every phase: above the p95, so some calls are always hedged and
    // each hedge event shows the delay in use.
    const phase = async (latencyMs: number, calls: number, concurrency: number): Promise<number[]> => {
      replicas!.servers.forEach((s, i) => s.setBehaviour({ latencyMs, spikes: { rate: 0.03, extraMs: 300, seed: latencyMs * 10 + i } }));
      const { errors } = await runCalls(calls, concurrency, async i => { await callWithId(c, `a${i}`); completed++; });
      expect(errors.map(e => e.message)).to.deep.equal([]);
      return hedges.splice(0).map(h => Math.round(h.delayMs));
    };
    const fast = await phase(2, 1200, 5);
    const slow = await phase(150, 400, 20);
    // The 400 slow samples are the newest of the window: they leave it after 600 + 350 more calls.
    const fastAgain = await phase(2, 1400, 5);
    console.log(`      2 ms replicas: first hedge after ${firstHedgeAfter} calls, ${fast.length} hedges, last delays ${JSON.stringify(fast.slice(-3))}; `
      + `150 ms: ${slow.length} hedges, delays first ${JSON.stringify(slow.slice(0, 3))}, last ${JSON.stringify(slow.slice(-3))}; `
      + `2 ms again: ${fastAgain.length} hedges, delays first ${JSON.stringify(fastAgain.slice(0, 3))}, last ${JSON.stringify(fastAgain.slice(-3))}`);
    expect(firstHedgeAfter).to.be.at.least(100 - 5); // no hedging before 100 first attempts (5 calls in flight)
    // Bounds relative to the 150 ms step: on 2 busy shared cores the 2 ms replicas' own p95 was 5–60 ms.
    expect(fast.length).to.be.greaterThan(0);
    expect(Math.max(...fast.slice(-3))).to.be.below(150);
    expect(Math.min(...slow.slice(-3))).to.be.at.least(150);
    expect(fastAgain.length).to.be.greaterThan(0);
    expect(Math.max(...fastAgain.slice(-3))).to.be.below(150);
  });
});
