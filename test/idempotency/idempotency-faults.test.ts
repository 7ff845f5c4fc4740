/**
 * Faults, over replica processes and a real etcd: an owner killed with -9 mid-handler (the
 * next attempt claims once its lease lapses), etcd down (fail closed / open, then recovery),
 * and the exactly-once target: a counter on 3 replicas, hedging + retries, 30 % of answers
 * lost after the handler ran, one replica kill -9'd mid-run.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createEtcdIdempotencyStore, createRetryInterceptor, register, type IdempotencyStore } from '../../src';
import { loadEcho } from '../support/echo-proto';
import { startEtcd, type EtcdServer } from '../support/etcd';
import { captureGrpcLog } from '../support/grpc-log';
import { waitFor } from '../support/wait';
import { callCounter, type CounterServer, startCounterServer, UNARY_PATH, withKey } from './counter-server';
import { type CounterReplica, killAllCounterReplicas, spawnCounterReplica } from './counter-replicas';

describe('idempotency keys under faults (replica processes, real etcd)', function () {
  this.timeout(90_000);
  let etcd: EtcdServer;
  let dir: string;
  const clients: grpc.Client[] = [];
  let testCount = 0;

  before(async () => {
    register();
    etcd = await startEtcd();
    dir = mkdtempSync(join(tmpdir(), 'idem-'));
  });
  after(async () => {
    await killAllCounterReplicas();
    await etcd.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await killAllCounterReplicas();
  });

  function replicas(count: number, loseRatio: number, claimTtlSeconds: number, handlerDelayMs = 0): Promise<CounterReplica[]> {
    const test = ++testCount;
    return Promise.all(Array.from({ length: count }, (_unused, i) => spawnCounterReplica({
      name: `r${i}`,
      etcdHosts: etcd.endpoints,
      prefix: `_grpc_etcd_lb/idempotency-faults-${test}/`,
      claimTtlSeconds,
      loseRatio,
      seed: 1000 * test + i,
      execLog: join(dir, `t${test}-r${i}.log`),
      handlerDelayMs,
    })));
  }

  function client(target: string, interceptors: grpc.Interceptor[] = []): grpc.Client {
    const { Client } = loadEcho();
    const c = new Client(target, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ etcd_weighted_round_robin: {} }] }),
      'grpc.use_local_subchannel_pool': 1,
      interceptors,
    });
    clients.push(c);
    return c;
  }

  it('owner death: a replica kill -9-ed while running the handler lets the waiting attempt claim and run it', async () => {
    const [a, b] = await replicas(2, 0, 1);
    const first = callCounter(client(a.address), 'hang:r0', withKey('k-owner'), 20_000);
    await waitFor('r0 to run the handler', () => a.log().executed.includes('k-owner'));
    const started = Date.now();
    const waiting = callCounter(client(b.address), 'hang:r0', withKey('k-owner'), 20_000);
    await waitFor('r1 to wait (no execution yet)', () => b.log().executed.length === 0 && Date.now() - started > 100);
    await a.kill();
    const outcome = await waiting;
    expect((await first).code).to.equal(grpc.status.UNAVAILABLE);
    expect(outcome.code).to.equal(grpc.status.OK);
    expect(outcome.reply).to.include({ server: 'r1' });
    expect(b.log().executed).to.deep.equal(['k-owner']);
    // It waited for the claim to lapse with r0's lease (TTL 1 s), not for the deadline.
    expect(Date.now() - started).to.be.lessThan(10_000);
  });

  it('exactly once: 3 replicas, hedging + retries, 30 % of answers lost after the handler, one replica kill -9-ed mid-run', async () => {
    const group = await replicas(3, 0.3, 2, 2);
    const target = `ipv4:${group.map(r => r.address).join(',')}`;
    const c = client(target, [createRetryInterceptor({
      maxAttempts: 10,
      initialBackoffMs: 5,
      maxBackoffMs: 100,
      maxTokens: 10_000,
      hedging: { delayMs: 5, maxAttempts: 2, maxHedgeRatio: 0.5 },
      idempotencyKeys: { methods: [UNARY_PATH] },
    })]);
    const CALLS = 400;
    const CONCURRENCY = 8;
    const KILL_AFTER = 150;
    const outcomes: Array<{ key: string; code: grpc.status; details: string; replayed: boolean }> = [];
    let next = 0;
    let killed: Promise<void> | undefined;
    const worker = async (): Promise<void> => {
      while (next < CALLS) {
        const key = `call-${next++}`;
        const o = await callCounter(c, `+1 ${key}`, withKey(key), 20_000);
        outcomes.push({ key, code: o.code, details: o.details, replayed: o.trailers?.get('idempotency-replayed')[0] === 'true' });
        if (outcomes.length === KILL_AFTER) killed = group[0].kill();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await killed;

    const failed = outcomes.filter(o => o.code !== grpc.status.OK);
    expect(failed, JSON.stringify(failed.slice(0, 5))).to.deep.equal([]);
    const runs = new Map<string, { total: number; crashed: number }>();
    group.forEach((replica, i) => {
      const { executed, done } = replica.log();
      for (const key of executed) {
        const entry = runs.get(key) ?? { total: 0, crashed: 0 };
        entry.total++;
        // Cut by the kill before its result was recorded: documented at-least-once.
        if (i === 0 && !done.has(key)) entry.crashed++;
        runs.set(key, entry);
      }
    });
    let crashedReruns = 0;
    for (const o of outcomes) {
      const entry = runs.get(o.key);
      expect(entry, `executions of ${o.key}`).to.not.equal(undefined);
      expect(entry!.total - entry!.crashed, `executions of ${o.key} not cut by the kill`).to.be.at.most(1);
      crashedReruns += entry!.total - 1;
    }
    // The test could fail: answers were lost and retried, and retries were replayed.
    expect(outcomes.filter(o => o.replayed).length).to.be.greaterThan(20);
    // Only calls in flight on the killed replica can have run twice.
    expect(crashedReruns).to.be.at.most(CONCURRENCY * 2);
    console.log(`      ${CALLS} calls, 0 failed; ${outcomes.filter(o => o.replayed).length} answered by replay; ${crashedReruns} re-run after the kill cut them`);
  });

  describe('etcd unreachable', () => {
    let down: EtcdServer;
    const stores: IdempotencyStore[] = [];
    const servers: CounterServer[] = [];

    before(async () => {
      down = await startEtcd({ name: 'down' });
    });
    after(async () => {
      await Promise.all(servers.map(s => s.stop()));
      await Promise.all(stores.map(s => s.close()));
      await down.destroy();
    });

    async function server(name: string, failOpen: boolean): Promise<grpc.Client> {
      const store = createEtcdIdempotencyStore({ etcd: { hosts: down.endpoints }, prefix: `_grpc_etcd_lb/idempotency-down-${name}/`, operationTimeoutMs: 500 });
      stores.push(store);
      const s = await startCounterServer({ name, idempotency: { store, failOpen } });
      servers.push(s);
      const { Client } = loadEcho();
      const c = new Client(s.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
      clients.push(c);
      return c;
    }

    it('fails closed (UNAVAILABLE, handler not run) by default, runs without dedup with failOpen, and recovers with etcd', async () => {
      const closed = await server('closed', false);
      const open = await server('open', true);
      expect((await callCounter(closed, 'x', withKey('k-before'))).code).to.equal(grpc.status.OK);
      await down.kill();
      const log = captureGrpcLog();
      try {
        const refused = await callCounter(closed, 'x', withKey('k-down'), 5000);
        expect(refused.code).to.equal(grpc.status.UNAVAILABLE);
        expect(refused.details).to.match(/idempotency store unavailable, call not run/);
        expect(servers[0].executions.get('k-down')).to.equal(undefined);
        // A call without a key does not touch the store.
        expect((await callCounter(closed, 'x', new grpc.Metadata(), 5000)).code).to.equal(grpc.status.OK);
        const ran = await callCounter(open, 'x', withKey('k-down'), 5000);
        expect(ran.code).to.equal(grpc.status.OK);
        expect(servers[1].executions.get('k-down')).to.equal(1);
        expect(log.lines.join('\n')).to.match(/without deduplication \(failOpen\)/);
      } finally {
        log.restore();
      }
      await down.restart();
      await waitFor('the store to work again', async () => (await callCounter(closed, 'x', withKey('k-after'), 3000)).code === grpc.status.OK, { timeoutMs: 20_000, intervalMs: 200 });
      expect((await callCounter(closed, 'x', withKey('k-after'))).trailers?.get('idempotency-replayed')).to.deep.equal(['true']);
    });
  });
});
