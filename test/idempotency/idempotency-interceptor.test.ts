/**
 * The server rules of idempotency keys over real grpc-js servers sharing a real etcd:
 * first sight, replay (OK and errors, exactly), mismatch, concurrent attempts, retryable
 * results, TTL expiry, and the etcd store's keys.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { createEtcdIdempotencyStore, createIdempotencyInterceptor, createMemoryIdempotencyStore, register, type IdempotencyStore } from '../../src';
import { captureGrpcLog } from '../support/grpc-log';
import { type EchoReply, type EchoRequest } from '../support/echo-proto';
import { loadEcho } from '../support/echo-proto';
import { startEtcd, type EtcdServer } from '../support/etcd';
import { waitFor } from '../support/wait';
import { callCounter, type CounterAction, type CounterServer, startCounterServer, withKey } from './counter-server';

describe('idempotency interceptor over real servers and etcd', function () {
  this.timeout(30_000);
  let etcd: EtcdServer;
  let raw: Etcd3;
  const stores: IdempotencyStore[] = [];
  const servers: CounterServer[] = [];
  const clients: grpc.Client[] = [];
  let prefixCount = 0;
  let prefix = '';

  before(async () => {
    etcd = await startEtcd();
    raw = new Etcd3({ hosts: etcd.endpoints });
  });
  after(async () => {
    raw.close();
    await etcd.destroy();
  });
  beforeEach(() => {
    prefix = `_grpc_etcd_lb/idempotency-test-${++prefixCount}/`;
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(servers.splice(0).map(s => s.stop()));
    await Promise.all(stores.splice(0).map(s => s.close()));
  });

  function store(): IdempotencyStore {
    const s = createEtcdIdempotencyStore({ etcd: { hosts: etcd.endpoints }, prefix, claimTtlSeconds: 2 });
    stores.push(s);
    return s;
  }

  async function replica(name: string, action?: (req: { message?: string }, key: string, n: number) => CounterAction, ttlMs?: number): Promise<CounterServer> {
    const server = await startCounterServer({ name, idempotency: { store: store(), ttlMs }, action });
    servers.push(server);
    return server;
  }

  function client(address: string): grpc.Client {
    const { Client } = loadEcho();
    const c = new Client(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    clients.push(c);
    return c;
  }

  it('first sight runs the handler once, with the key in its metadata, and records the result in etcd', async () => {
    const keysSeen: string[] = [];
    const a = await replica('a', (_req, key) => {
      keysSeen.push(key);
      return { kind: 'reply' };
    });
    const outcome = await callCounter(client(a.address), 'one', withKey('k-first'));
    expect(outcome.code).to.equal(grpc.status.OK);
    expect(outcome.reply).to.include({ message: 'one', server: 'a', index: 1 });
    expect(outcome.trailers?.get('idempotency-replayed')).to.deep.equal([]);
    expect(keysSeen).to.deep.equal(['k-first']);
    const stored = JSON.parse((await raw.get(`${prefix}k-first`).string())!) as { s: string; c: number };
    expect(stored).to.include({ s: 'd', c: grpc.status.OK });
  });

  it('a call without a key passes through: every call runs', async () => {
    const a = await replica('a');
    const c = client(a.address);
    await callCounter(c, 'x');
    await callCounter(c, 'x');
    expect(a.executions.get('')).to.equal(2);
    expect(await raw.getAll().prefix(prefix).keys()).to.deep.equal([]);
  });

  it('methods not named by `methods` pass through, key or not', async () => {
    const a = await startCounterServer({ name: 'a', idempotency: { store: store(), methods: ['/other.Service/Method'] } });
    servers.push(a);
    const c = client(a.address);
    await callCounter(c, 'x', withKey('k-unlisted'));
    await callCounter(c, 'x', withKey('k-unlisted'));
    expect(a.executions.get('k-unlisted')).to.equal(2);
  });

  it('replays a recorded result exactly on another replica, without running the handler, with idempotency-replayed: true', async () => {
    const a = await replica('a');
    const b = await replica('b');
    const first = await callCounter(client(a.address), 'pay 10', withKey('k-replay'));
    const second = await callCounter(client(b.address), 'pay 10', withKey('k-replay'));
    expect(second.code).to.equal(grpc.status.OK);
    expect(second.reply).to.deep.equal(first.reply);
    expect(second.trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    expect(a.total() + b.total()).to.equal(1);
  });

  it('replays the response headers the handler sent, and stores them in the etcd value', async () => {
    const a = await replica('a', () => ({ kind: 'reply', headers: { 'x-request-cost': '7' } }));
    const b = await replica('b');
    const first = await callCounter(client(a.address), 'pay 10', withKey('k-headers'));
    const second = await callCounter(client(b.address), 'pay 10', withKey('k-headers'));
    expect(first.headers?.get('x-request-cost')).to.deep.equal(['7']);
    expect(second.headers?.get('x-request-cost')).to.deep.equal(['7']);
    expect(second.trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    expect(second.reply).to.deep.equal(first.reply);
    expect(a.total() + b.total()).to.equal(1);
    const stored = JSON.parse((await raw.get(`${prefix}k-headers`).string())!) as { hd?: unknown };
    expect(stored.hd).to.deep.equal([['x-request-cost', '7']]);
  });

  it('replays a non-retryable failure exactly: code, details and trailers', async () => {
    const a = await replica('a', () => ({ kind: 'fail', code: grpc.status.FAILED_PRECONDITION, details: 'insufficient funds', trailers: { 'x-balance': '3' } }));
    const b = await replica('b');
    const first = await callCounter(client(a.address), 'pay 10', withKey('k-fail'));
    const second = await callCounter(client(b.address), 'pay 10', withKey('k-fail'));
    expect(first.code).to.equal(grpc.status.FAILED_PRECONDITION);
    expect(second).to.include({ code: grpc.status.FAILED_PRECONDITION, details: 'insufficient funds' });
    expect(second.trailers?.get('x-balance')).to.deep.equal(['3']);
    expect(second.trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    expect(b.total()).to.equal(0);
  });

  it('the same key with a different request is INVALID_ARGUMENT naming the key (recorded and while running)', async () => {
    let release!: () => void;
    const held = new Promise<void>(resolve => (release = resolve));
    const a = await replica('a', req => (req.message === 'slow' ? { kind: 'hold', until: held } : { kind: 'reply' }));
    const c = client(a.address);
    await callCounter(c, 'pay 10', withKey('k-mismatch'));
    const recorded = await callCounter(c, 'pay 99', withKey('k-mismatch'));
    expect(recorded.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(recorded.details).to.contain("'k-mismatch'");
    const running = callCounter(c, 'slow', withKey('k-running'));
    await waitFor('the slow call to run', () => a.executions.get('k-running') === 1);
    const other = await callCounter(c, 'fast', withKey('k-running'));
    expect(other.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(other.details).to.contain("'k-running'");
    release();
    expect((await running).code).to.equal(grpc.status.OK);
    expect(a.executions.get('k-mismatch')).to.equal(1);
  });

  it('concurrent attempts of one key (a hedge): the second waits for the first and replays its answer', async () => {
    let release!: () => void;
    const held = new Promise<void>(resolve => (release = resolve));
    const a = await replica('a', () => ({ kind: 'hold', until: held }));
    const b = await replica('b');
    const first = callCounter(client(a.address), 'order 7', withKey('k-hedge'));
    await waitFor('a to run the handler', () => a.executions.get('k-hedge') === 1);
    const hedges = [callCounter(client(b.address), 'order 7', withKey('k-hedge')), callCounter(client(b.address), 'order 7', withKey('k-hedge'))];
    // The hedges are waiting on a's claim, not running: b's handler never starts.
    await new Promise(resolve => setImmediate(resolve));
    release();
    const outcomes = await Promise.all([first, ...hedges]);
    for (const o of outcomes) expect(o.reply).to.include({ server: 'a', index: 1 });
    expect(outcomes.slice(1).map(o => o.trailers?.get('idempotency-replayed')[0])).to.deep.equal(['true', 'true']);
    expect(a.total() + b.total()).to.equal(1);
  });

  it('a waiting attempt gives up with DEADLINE_EXCEEDED at its deadline, and the owner still records', async () => {
    let release!: () => void;
    const held = new Promise<void>(resolve => (release = resolve));
    const a = await replica('a', () => ({ kind: 'hold', until: held }));
    const first = callCounter(client(a.address), 'q', withKey('k-deadline'), 10_000);
    await waitFor('a to run the handler', () => a.executions.get('k-deadline') === 1);
    const waiting = await callCounter(client(a.address), 'q', withKey('k-deadline'), 300);
    expect(waiting.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
    release();
    expect((await first).code).to.equal(grpc.status.OK);
    const later = await callCounter(client(a.address), 'q', withKey('k-deadline'));
    expect(later.trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    expect(a.executions.get('k-deadline')).to.equal(1);
  });

  for (const code of [grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED]) {
    it(`a retryable result (${grpc.status[code]}) is not recorded: the claim is released and the next attempt runs the handler`, async () => {
      const a = await replica('a', (_req, _key, n) => (n === 1 ? { kind: 'fail', code, details: 'try again' } : { kind: 'reply' }));
      const c = client(a.address);
      expect((await callCounter(c, 'r', withKey('k-retryable'))).code).to.equal(code);
      expect(await raw.get(`${prefix}k-retryable`).string()).to.equal(null);
      const second = await callCounter(c, 'r', withKey('k-retryable'));
      expect(second.reply).to.include({ index: 2 });
      const third = await callCounter(c, 'r', withKey('k-retryable'));
      expect(third.reply).to.include({ index: 2 });
      expect(third.trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    });
  }

  it('a result expires after ttlMs: the key then runs again', async () => {
    const a = await replica('a', undefined, 1000);
    const c = client(a.address);
    await callCounter(c, 't', withKey('k-ttl'));
    expect((await callCounter(c, 't', withKey('k-ttl'))).trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    // Kept at least ttlMs (1 s) and at most ttlMs + 1 s, rounded up to etcd's whole-second leases.
    const goneAfterMs = await waitFor('the result to expire', async () => (await raw.get(`${prefix}k-ttl`).string()) === null, { timeoutMs: 8000, intervalMs: 100 });
    expect(goneAfterMs).to.be.greaterThan(700);
    const again = await callCounter(c, 't', withKey('k-ttl'));
    expect(again.reply).to.include({ index: 2 });
  });

  it('a response that cannot be replayed exactly is not recorded, with a warning naming the method (never a silent replay)', async () => {
    const log = captureGrpcLog();
    const server = new grpc.Server({ interceptors: [createIdempotencyInterceptor({ store: createMemoryIdempotencyStore() })] });
    let runs = 0;
    server.addService(loadEcho().service, {
      // A function field: ignored by the wire serializer, refused by a structured clone.
      Unary: (_call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) =>
        callback(null, { message: 'm', server: 's', index: ++runs, hook: () => 0 } as unknown as EchoReply),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    try {
      const c = client(`127.0.0.1:${port}`);
      expect((await callCounter(c, 'x', withKey('k-clone'))).reply).to.include({ index: 1 });
      expect((await callCounter(c, 'x', withKey('k-clone'))).reply).to.include({ index: 2 });
      expect(log.lines.join('\n')).to.match(/the response of \/grpc_etcd_lb.echo.Echo\/Unary cannot be replayed/);
    } finally {
      log.restore();
      server.forceShutdown();
    }
  });

  it('the default prefix is refused as a service name (no channel resolves these keys)', async () => {
    const { Client } = loadEcho();
    register();
    expect(() => new Client('etcd:///_grpc_etcd_lb/idempotency/x', grpc.credentials.createInsecure())).to.throw(/reserved/);
  });
});
