/** The memory store's contract (the one a Redis or SQL store must keep too), and option validation. */
import { expect } from 'chai';
import { createEtcdIdempotencyStore, createIdempotencyInterceptor, createMemoryIdempotencyStore, type IdempotencyResult } from '../../src';
import { waitFor } from '../support/wait';

const RESULT: IdempotencyResult = { requestHash: 'h', code: 0, details: 'OK', response: Buffer.from('r'), trailers: [['x-a', '1']] };

describe('idempotency stores and options', () => {
  it('memory store: claim once, others see running then done; release frees; a stale claim cannot complete', async () => {
    const store = createMemoryIdempotencyStore();
    const first = await store.claim('k', 'h');
    expect(first.state).to.equal('claimed');
    expect(await store.claim('k', 'h')).to.deep.equal({ state: 'running', requestHash: 'h' });
    const abort = new AbortController();
    const waiting = store.wait('k', abort.signal);
    if (first.state !== 'claimed') throw new Error('unreachable');
    await store.complete(first.claim, RESULT, 60_000);
    expect(await waiting).to.deep.equal(RESULT);
    expect(await store.claim('k', 'h')).to.deep.equal({ state: 'done', result: RESULT });

    const other = await store.claim('j', 'h');
    if (other.state !== 'claimed') throw new Error('expected a claim');
    const released = store.wait('j', new AbortController().signal);
    await store.release(other.claim);
    expect(await released).to.equal(undefined);
    const again = await store.claim('j', 'h');
    expect(again.state).to.equal('claimed');
    await store.complete(other.claim, RESULT, 60_000); // the old claim: ignored
    expect((await store.claim('j', 'h')).state).to.equal('running');
    await store.close();
  });

  it('memory store: a wait ends undefined on abort; a result expires after ttlMs', async () => {
    const store = createMemoryIdempotencyStore();
    const claim = await store.claim('k', 'h');
    const abort = new AbortController();
    const waiting = store.wait('k', abort.signal);
    abort.abort();
    expect(await waiting).to.equal(undefined);
    if (claim.state !== 'claimed') throw new Error('expected a claim');
    await store.complete(claim.claim, RESULT, 50);
    await waitFor('the result to expire', async () => (await store.claim('k', 'h')).state === 'claimed', { timeoutMs: 2000 });
    await store.close();
  });

  it('createIdempotencyInterceptor: a TypeError names the bad option and value', () => {
    const store = createMemoryIdempotencyStore();
    expect(() => createIdempotencyInterceptor({} as never)).to.throw(TypeError, /store must be an IdempotencyStore/);
    expect(() => createIdempotencyInterceptor({ store, ttlMs: 0 })).to.throw(TypeError, /ttlMs.*got 0/);
    expect(() => createIdempotencyInterceptor({ store, header: 'Key' })).to.throw(TypeError, /header.*"Key"/);
    expect(() => createIdempotencyInterceptor({ store, methods: ['x'] })).to.throw(TypeError, /methods.*"x"/);
    expect(() => createIdempotencyInterceptor({ store, failOpen: 'yes' as never })).to.throw(TypeError, /failOpen.*"yes"/);
    expect(() => createIdempotencyInterceptor({ store, ttl: 5 } as never)).to.throw(TypeError, /unknown option 'ttl'/);
  });

  it('createEtcdIdempotencyStore: a TypeError names the bad option and value', () => {
    const etcd = { hosts: ['127.0.0.1:1'] };
    expect(() => createEtcdIdempotencyStore({ etcd, prefix: '' })).to.throw(TypeError, /prefix/);
    expect(() => createEtcdIdempotencyStore({ etcd, claimTtlSeconds: 0.5 })).to.throw(TypeError, /claimTtlSeconds.*0.5/);
    expect(() => createEtcdIdempotencyStore({ etcd: { hosts: [] } })).to.throw(TypeError, /at least one host/);
    expect(() => createEtcdIdempotencyStore({ etcd, nope: 1 } as never)).to.throw(TypeError, /unknown option 'nope'/);
  });
});
