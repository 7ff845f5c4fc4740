import { expect } from 'chai';
import { registerBalancers } from '../../../src/balancer/policies/register-balancers';
import { type EchoClient } from '../../support/echo-proto';
import { type EchoBehaviour } from '../../support/echo-server';
import { spawnReplica, type ReplicaProcess } from '../../support/replica-process';
import { waitFor } from '../../support/wait';
import { makeClient, runCalls } from '../support/load';
import { OpenLoop, percentileMs, shareOf, type Reply } from '../support/open-loop';
import { createStaticTarget, type StaticTarget } from '../support/static-resolver';

/**
 * etcd_peak_ewma against round_robin on real replica processes, one of 5
 * degraded the way the bench's `overload` and `stalls` scenarios degrade it.
 * Shares and orderings only: speed is the bench's business.
 */
describe('etcd_peak_ewma on degraded replicas (real processes)', function () {
  this.timeout(120_000);
  let replicas: ReplicaProcess[] = [];
  const clients = new Set<EchoClient>();
  let target: StaticTarget | undefined;

  before(() => registerBalancers());
  afterEach(async () => {
    for (const c of clients) c.close();
    clients.clear();
    target?.dispose();
    const stopping = replicas.map(r => r.kill());
    [target, replicas] = [undefined, []];
    await Promise.all(stopping);
  });

  async function start(degraded: EchoBehaviour): Promise<ReplicaProcess> {
    replicas = await Promise.all(Array.from({ length: 5 }, (_, i) => spawnReplica({ name: `d${i}`, behaviour: i === 2 ? degraded : {} })));
    target = createStaticTarget(replicas.map(r => ({ address: r.address })));
    return replicas[2];
  }

  /** Replies of an open loop through `policy` for `durationMs` after a short warm-up. */
  async function load(policy: string, ratePerSec: number, durationMs: number): Promise<{ replies: Reply[]; failed: number }> {
    const client = makeClient(target!.target, { [policy]: {} });
    clients.add(client);
    await runCalls(client, 50, 5);
    const loop = new OpenLoop(client, ratePerSec);
    const fromMs = performance.now() + 300;
    await waitFor(`${policy}: ${durationMs} ms of replies`, () => loop.replies.length > 0 && loop.replies[loop.replies.length - 1].atMs - fromMs >= durationMs, { timeoutMs: durationMs + 30_000 });
    await loop.stop();
    return { replies: loop.since(fromMs), failed: loop.failed };
  }

  it('overload: keeps most calls off a replica serving one call at a time, where round_robin queues its fifth', async () => {
    // 20 ms per call, one at a time: 50 calls/s; round_robin sends it 60 of 300/s, so its queue only grows.
    const serial = await start({ maxConcurrent: 1, latencyMs: 20 });
    const rr = await load('round_robin', 300, 3000);
    await waitFor('the serial replica to drain its queue', () => serial.stats.inFlight === 0, { timeoutMs: 30_000, intervalMs: 100 });
    const pe = await load('etcd_peak_ewma', 300, 3000);
    const rrShare = shareOf(rr.replies, serial.name);
    const peShare = shareOf(pe.replies, serial.name);
    console.log(`      replica serving 1 call at a time (20 ms): round_robin sends it ${(100 * rrShare).toFixed(1)} % (p99 ${percentileMs(rr.replies, 0.99)} ms), etcd_peak_ewma ${(100 * peShare).toFixed(1)} % (p99 ${percentileMs(pe.replies, 0.99)} ms)`);
    expect(pe.failed).to.equal(0);
    // Under its capacity (50 of 300/s = 16.7 %), and well under round_robin's fifth.
    expect(peShare).to.be.lessThan(0.12);
    expect(peShare).to.be.lessThan(rrShare / 2);
    // Its calls wait less than round_robin's: the 90th percentile of its own calls is lower.
    const tail = (replies: Reply[]): number => {
      const own = replies.filter(r => r.server === serial.name).map(r => r.latencyMs).sort((a, b) => a - b);
      return own[Math.floor(0.9 * (own.length - 1))];
    };
    expect(tail(pe.replies)).to.be.lessThan(tail(rr.replies));
  });

  it('stalls: sends fewer calls than round_robin into a replica whose event loop stops 100 ms every second', async () => {
    const stalled = await start({ stall: { everyMs: 1000, forMs: 100 } });
    const slowOnStalled = (replies: Reply[]): number => replies.filter(r => r.server === stalled.name && r.latencyMs > 50).length;
    const rr = await load('round_robin', 250, 6000);
    const pe = await load('etcd_peak_ewma', 250, 6000);
    const rrSlow = slowOnStalled(rr.replies);
    const peSlow = slowOnStalled(pe.replies);
    console.log(`      calls > 50 ms on the stalling replica: round_robin ${rrSlow} of ${rr.replies.length} (its share ${(100 * shareOf(rr.replies, stalled.name)).toFixed(1)} %), `
      + `etcd_peak_ewma ${peSlow} of ${pe.replies.length} (its share ${(100 * shareOf(pe.replies, stalled.name)).toFixed(1)} %); p99 ${percentileMs(rr.replies, 0.99)} vs ${percentileMs(pe.replies, 0.99)} ms`);
    expect(pe.failed).to.equal(0);
    // round_robin puts a fifth of the calls due in each stall there (≈ 5 per second at this rate).
    expect(rrSlow).to.be.greaterThan(5);
    expect(peSlow).to.be.lessThan(rrSlow);
    expect(shareOf(pe.replies, stalled.name)).to.be.lessThan(shareOf(rr.replies, stalled.name));
  });

  it('a replica failing fast gets under 1 % of first attempts (no retries)', async () => {
    const failing = await start({ failRate: 1 });
    const client = makeClient(target!.target, { etcd_peak_ewma: {} });
    clients.add(client);
    const loop = new OpenLoop(client, 250);
    await waitFor('2,000 calls', () => loop.sent >= 2000, { timeoutMs: 60_000 });
    await loop.stop();
    const share = loop.failed / loop.sent;
    console.log(`      replica answering UNAVAILABLE at once: ${loop.failed} of ${loop.sent} first attempts (${(100 * share).toFixed(2)} %); the server saw ${failing.stats.calls}`);
    expect(loop.failed).to.be.greaterThan(0);
    expect(share).to.be.lessThan(0.01);
  });
});
