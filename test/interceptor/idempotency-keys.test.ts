/**
 * The client half of idempotency keys (`createRetryInterceptor({ idempotencyKeys })`) over
 * real grpc-js servers: one key per logical call on every attempt and hedge, the caller's
 * own key kept, retries after the answer was lost (even past the headers/message commit
 * point), after an attempt timeout, hedging — each ending in one execution on servers that
 * share a store. Without the option, nothing changes.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createMemoryIdempotencyStore, createRetryInterceptor, register, type IdempotencyStore, type RetryOptions } from '../../src';
import { isKeyedRetryable } from '../../src/interceptor/idempotency-keys';
import { resolveRetryOptions } from '../../src/interceptor/retry-options';
import { COMMITTED_SUFFIX } from '../../src/interceptor/retrying-call';
import { loadEcho } from '../support/echo-proto';
import { callCounter, type CounterAction, type CounterServer, losingInterceptor, startCounterServer, UNARY_PATH, withKey } from '../idempotency/counter-server';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('retry interceptor: idempotencyKeys', function () {
  this.timeout(30_000);
  const servers: CounterServer[] = [];
  const clients: grpc.Client[] = [];
  let store: IdempotencyStore;

  before(() => register());
  beforeEach(() => {
    store = createMemoryIdempotencyStore();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(servers.splice(0).map(s => s.stop()));
    await store.close();
  });

  async function replica(name: string, options: { dedup?: boolean; lose?: () => boolean; action?: (req: { message?: string }, key: string, n: number) => CounterAction } = {}): Promise<CounterServer> {
    const s = await startCounterServer({
      name,
      idempotency: options.dedup === false ? undefined : { store },
      outer: options.lose ? [losingInterceptor(options.lose)] : [],
      action: options.action,
    });
    servers.push(s);
    return s;
  }

  function client(group: CounterServer[], options: RetryOptions): grpc.Client {
    const { Client } = loadEcho();
    const c = new Client(`ipv4:${group.map(s => s.address).join(',')}`, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ etcd_weighted_round_robin: {} }] }),
      'grpc.use_local_subchannel_pool': 1,
      interceptors: [createRetryInterceptor(options)],
    });
    clients.push(c);
    return c;
  }

  const keys = { methods: [UNARY_PATH] };

  it('validates the option: a TypeError names the bad value; hedging may rely on it instead of isIdempotent', () => {
    expect(() => resolveRetryOptions({ idempotencyKeys: { methods: 'x' as unknown as string[] } })).to.throw(TypeError, /idempotencyKeys.methods/);
    expect(() => resolveRetryOptions({ idempotencyKeys: { methods: ['Unary'] } })).to.throw(TypeError, /full method paths.*"Unary"/);
    expect(() => resolveRetryOptions({ idempotencyKeys: { methods: [], header: 'Idem-Key' } })).to.throw(TypeError, /idempotencyKeys.header.*"Idem-Key"/);
    expect(() => resolveRetryOptions({ idempotencyKeys: { methods: [], header: 'k-bin' } })).to.throw(TypeError, /-bin/);
    expect(() => resolveRetryOptions({ idempotencyKeys: { methods: [], extra: 1 } as never })).to.throw(TypeError, /idempotencyKeys.extra/);
    expect(resolveRetryOptions({ hedging: {}, idempotencyKeys: keys }).hedging).to.not.equal(undefined);
  });

  it('stamps one random key per call, the same on every attempt; a new one for the next call', async () => {
    const seen: string[] = [];
    const a = await replica('a', { dedup: false, action: (_req, key, n) => {
      seen.push(key);
      return n === 1 ? { kind: 'fail', code: grpc.status.UNAVAILABLE, details: 'not yet' } : { kind: 'reply' };
    } });
    const c = client([a], { ...{ idempotencyKeys: keys }, initialBackoffMs: 1 });
    expect((await callCounter(c, 'x')).code).to.equal(grpc.status.OK);
    expect((await callCounter(c, 'y')).code).to.equal(grpc.status.OK);
    // Each call's first attempt fails (first execution of its key) and is retried.
    expect(seen).to.have.length(4);
    expect(seen[0]).to.match(UUID);
    expect(seen[1]).to.equal(seen[0]);
    expect(seen[2]).to.match(UUID).and.not.equal(seen[0]);
    expect(seen[3]).to.equal(seen[2]);
  });

  it("keeps the caller's own key; sends none for other methods or without the option", async () => {
    const a = await replica('a', { dedup: false });
    await callCounter(client([a], { idempotencyKeys: keys }), 'x', withKey('mine-1'));
    await callCounter(client([a], { idempotencyKeys: { methods: ['/other.Service/Method'] } }), 'x');
    await callCounter(client([a], {}), 'x');
    expect([...a.executions.keys()]).to.deep.equal(['mine-1', '']);
    expect(a.executions.get('')).to.equal(2);
  });

  it('retries a call whose answer was lost after the handler ran (past the commit point): one execution, the replayed answer', async () => {
    let lost = 0;
    const group = [await replica('a', { lose: () => lost++ === 0 }), await replica('b')];
    const outcome = await callCounter(client(group, { idempotencyKeys: keys, initialBackoffMs: 1 }), 'charge 5');
    expect(outcome.code).to.equal(grpc.status.OK);
    expect(outcome.trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    expect(group[0].total() + group[1].total()).to.equal(1);
  });

  it('without idempotencyKeys the same lost answer fails the call (committed on headers), as before', async () => {
    let lost = 0;
    const group = [await replica('a', { lose: () => lost++ === 0 }), await replica('b')];
    const outcome = await callCounter(client(group, { initialBackoffMs: 1 }), 'charge 5');
    expect(outcome.code).to.equal(grpc.status.UNAVAILABLE);
    expect(outcome.details).to.contain(COMMITTED_SUFFIX.trim().slice(0, 40));
  });

  it('a timed-out attempt (perAttemptTimeoutMs) is retried on another replica, which waits for the first and replays it', async () => {
    let release!: () => void;
    const held = new Promise<void>(resolve => (release = resolve));
    const a = await replica('a', { action: () => ({ kind: 'hold', until: held }) });
    const b = await replica('b');
    // The first attempt's handler finishes once the client has cut it and retried elsewhere.
    const c = client([a, b], { idempotencyKeys: keys, perAttemptTimeoutMs: 100, initialBackoffMs: 1, maxAttempts: 5, onRetry: () => release() });
    const outcome = await callCounter(c, 'slow');
    expect(outcome.code).to.equal(grpc.status.OK);
    expect(outcome.reply).to.include({ server: 'a' });
    expect(outcome.trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    expect(a.total() + b.total()).to.equal(1);
  });

  it('hedges keyed calls (hedging set, no isIdempotent): the hedge replays the first attempt, one execution', async () => {
    let release!: () => void;
    const held = new Promise<void>(resolve => (release = resolve));
    const hedges: number[] = [];
    const a = await replica('a', { action: () => ({ kind: 'hold', until: held }) });
    const b = await replica('b');
    const c = client([a, b], { idempotencyKeys: keys, hedging: { delayMs: 20, maxHedgeRatio: 1 }, onHedge: e => hedges.push(e.attempt) });
    const pending = callCounter(c, 'hedged');
    setTimeout(release, 200).unref();
    const outcome = await pending;
    expect(outcome.code).to.equal(grpc.status.OK);
    expect(hedges).to.deep.equal([2]);
    expect(a.total() + b.total()).to.equal(1);
  });

  it('treats connection loss as retryable for keyed calls: UNAVAILABLE and a stream reset without a status', () => {
    const s = (code: grpc.status, details: string): grpc.StatusObject => ({ code, details, metadata: new grpc.Metadata() });
    expect(isKeyedRetryable(s(grpc.status.UNAVAILABLE, 'Connection dropped'))).to.equal(true);
    expect(isKeyedRetryable(s(grpc.status.INTERNAL, 'Received RST_STREAM with code 2 (Internal server error)'))).to.equal(true);
    expect(isKeyedRetryable(s(grpc.status.INTERNAL, 'handler bug'))).to.equal(false);
    expect(isKeyedRetryable(s(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'))).to.equal(false);
  });
});
