import { expect } from 'chai';
import { EtcdPeakEwmaConfig } from '../../../src/balancer/policies/peak-ewma';
import { createRetryInterceptor } from '../../../src/interceptor/retry-interceptor';
import { type RetryEvent } from '../../../src/interceptor/retry-options';
import { registerBalancers } from '../../../src/balancer/policies/register-balancers';
import { isLoadBalancerNameRegistered } from '../../../src/common/grpc-experimental';
import { unary, type EchoClient } from '../../support/echo-proto';
import { spawnReplica, type ReplicaProcess } from '../../support/replica-process';
import { seededRandom, waitFor } from '../../support/wait';
import { clientFor, runCalls as runRetriedCalls, startReplicas, warmUp, type Replicas } from '../../interceptor/replicas';
import { failedCount, makeClient, pct, runCalls, waitForEndpoints } from '../support/load';
import { createStaticTarget, type StaticTarget } from '../support/static-resolver';
import { quietly } from '../../support/grpc-log';
import { OpenLoop, percentileMs, shareOf, type Reply } from '../support/open-loop';


describe('etcd_peak_ewma', function () {
  this.timeout(90_000);
  let replicas: ReplicaProcess[] = [];
  let clients: EchoClient[] = [];
  let loops: OpenLoop[] = [];
  let target: StaticTarget | undefined;
  let retryReplicas: Replicas | undefined;

  before(() => registerBalancers());
  afterEach(async () => {
    await retryReplicas?.stop();
    retryReplicas = undefined;
    await Promise.all(loops.map(l => l.stop()));
    loops = [];
    clients.forEach(c => c.close());
    clients = [];
    target?.dispose();
    target = undefined;
    await Promise.all(replicas.map(r => r.kill()));
    replicas = [];
  });

  function client(lbConfig: object): EchoClient {
    const c = makeClient(target!.target, lbConfig);
    clients.push(c);
    return c;
  }

  function openLoop(c: EchoClient, ratePerSec: number): OpenLoop {
    const loop = new OpenLoop(c, ratePerSec);
    loops.push(loop);
    return loop;
  }

  it('is registered, and validates its config naming itself and the bad value', () => {
    expect(isLoadBalancerNameRegistered('etcd_peak_ewma')).to.equal(true);
    expect(EtcdPeakEwmaConfig.createFromJson({}).toJsonObject()).to.deep.equal({ etcd_peak_ewma: { choiceCount: 2, decayMs: 500, probeIntervalMs: 500 } });
    expect(EtcdPeakEwmaConfig.createFromJson({ choiceCount: 0, decayMs: 1000, initialLatencyMs: 2.5, probeIntervalMs: 250, healthCheck: { serviceName: 's' } }).toJsonObject())
      .to.deep.equal({ etcd_peak_ewma: { choiceCount: 0, decayMs: 1000, probeIntervalMs: 250, initialLatencyMs: 2.5, healthCheck: { serviceName: 's' } } });
    const bad: [object, RegExp][] = [
      [{ choiceCount: -1 }, /^choiceCount must be an integer in \[0, 1000000\], got -1$/],
      [{ decayMs: 0 }, /^decayMs must be an integer in \[1, 3600000\], got 0$/],
      [{ decayMs: '10s' }, /^decayMs must be an integer in \[1, 3600000\], got "10s"$/],
      [{ probeIntervalMs: 1.5 }, /^probeIntervalMs must be an integer in \[1, 3600000\], got 1.5$/],
      [{ initialLatencyMs: 0 }, /^initialLatencyMs must be a number in \(0, 3600000\], got 0$/],
      [{ initialLatencyMs: Number.NaN }, /^initialLatencyMs must be a number in \(0, 3600000\], got NaN$/],
      [{ healthCheck: 'yes' }, /^healthCheck must be an object/],
    ];
    for (const [json, message] of bad) expect(() => quietly(() => EtcdPeakEwmaConfig.createFromJson(json))).to.throw(message);
    expect(() => quietly(() => EtcdPeakEwmaConfig.createFromJson([]))).to.throw(/^config must be an object/);
  });

  it('keeps a replica +20 ms under 1 % at ~30 % load, and gives it a fair share again within seconds once it is fast (defaults)', async () => {
    replicas = await Promise.all(Array.from({ length: 5 }, (_, i) => spawnReplica({ name: `pe${i}`, behaviour: { latencyMs: i === 0 ? 20 : 0 } })));
    const slow = replicas[0];
    const addresses = replicas.map(r => r.address);
    target = createStaticTarget(addresses.map(address => ({ address })));

    // round_robin's capacity here, closed loop at concurrency 32 (the slow replica included).
    const rr = client({ round_robin: {} });
    await runCalls(rr, 200, 8);
    const capacityStartMs = performance.now();
    const closed = await runCalls(rr, 3000, 32);
    const capacityPerSec = 3000 / ((performance.now() - capacityStartMs) / 1000);
    expect(failedCount(closed)).to.equal(0);
    // 30 % of it, capped at 300/s: the machine is shared with other test runs, so stay well below saturation.
    const ratePerSec = Math.round(Math.min(300, 0.3 * capacityPerSec));

    // For comparison: least_request at the same rate.
    const lr = client({ etcd_least_request: {} });
    await runCalls(lr, 20, 4);
    await waitForEndpoints(addresses);
    const lrLoop = openLoop(lr, ratePerSec);
    await waitFor('least_request: 3 s worth of replies', () => lrLoop.replies.length >= 3 * ratePerSec, { timeoutMs: 15_000 });
    await lrLoop.stop();
    const lrShare = shareOf(lrLoop.replies, slow.name);

    const pe = client({ etcd_peak_ewma: {} });
    await runCalls(pe, 1, 1);
    const loop = openLoop(pe, ratePerSec);
    // Judged per window of 3 s. On a shared 2-core machine the fast replicas themselves stall now and
    // then (descheduled for 20-200 ms while other test runs compete); peak-EWMA then rightly prefers the
    // +20 ms replica to one that is stalling now (its calls in flight age). So the verdict is the
    // first window that is either under 1 % or calm (no fast replica answered slower than 20 ms in it or
    // in the second before it): a calm window over 1 % fails; noisy windows over 1 % are measured again.
    const windows: { share: number; calls: number; stalls: number }[] = [];
    const isStall = (r: Reply): boolean => r.server !== slow.name && r.latencyMs > 20;
    let verdict: { share: number; calls: number } | undefined;
    const measuringSinceMs = performance.now();
    let windowStartMs = measuringSinceMs;
    while (verdict === undefined && performance.now() - measuringSinceMs < 30_000) {
      const from = windowStartMs;
      await waitFor('3 s of replies', () => loop.replies.length > 0 && loop.replies[loop.replies.length - 1].atMs - from >= 3000, { timeoutMs: 15_000 });
      windowStartMs = performance.now();
      const replies = loop.replies.filter(r => r.atMs >= from && r.atMs < windowStartMs);
      const stalls = loop.replies.filter(r => r.atMs >= from - 1000 && r.atMs < windowStartMs && isStall(r)).length;
      const window = { share: shareOf(replies, slow.name), calls: replies.length, stalls };
      windows.push(window);
      if (stalls === 0 || window.share < 0.01) verdict = window;
    }
    const all = [...loop.replies];
    console.log(`      round_robin closed-loop capacity ${capacityPerSec.toFixed(0)} calls/s → open loop at ${ratePerSec}/s. Replica +20 ms gets: least_request ${pct(lrShare * lrLoop.replies.length, lrLoop.replies.length)} (p99 ${percentileMs(lrLoop.replies, 0.99)} ms); peak_ewma per 3 s window (share/fast replies > 20 ms) ${windows.map(w => `${pct(w.share * w.calls, w.calls)}/${w.stalls}`).join(' ')}; all windows ${pct(shareOf(all, slow.name) * all.length, all.length)} of ${all.length} calls (p50 ${percentileMs(all, 0.5)} ms, p99 ${percentileMs(all, 0.99)} ms)`);
    expect(loop.failed).to.equal(0);
    if (verdict !== undefined) {
      expect(verdict.calls).to.be.greaterThan(ratePerSec * 2);
      expect(verdict.share).to.be.lessThan(0.01);
    } else {
      // Every window noisy for 30 s (e.g. CPU hogs beside the suite): the fast replicas stall as long as
      // the slow one is slow, so "under 1 %" cannot be judged. What still must hold is latency-awareness
      // itself: the slow replica gets under half of what latency-blind least_request gave it, same run.
      const peShare = shareOf(all, slow.name);
      console.log(`      every window had fast replicas stalling > 20 ms: judged against least_request instead (${(peShare * 100).toFixed(2)} % vs ${(lrShare * 100).toFixed(2)} %)`);
      expect(all.length).to.be.greaterThan(ratePerSec * 10);
      expect(peShare).to.be.lessThan(0.5 * lrShare);
    }

    slow.setBehaviour({ latencyMs: 0 });
    const recoveredAtMs = performance.now();
    const regainedMs = await waitFor('the recovered replica to get 15 % of the last second (fair: 20 %)', () => {
      const now = performance.now();
      return now - recoveredAtMs >= 1000 && shareOf(loop.since(now - 1000), slow.name) >= 0.15;
    }, { timeoutMs: 20_000, intervalMs: 50 });
    const after = loop.since(performance.now() - 1000);
    console.log(`      after the slow replica became fast: 15 % of a 1 s window after ${regainedMs} ms (target: 2 s; the first 1 s window ends at 1 s); last second ${replicas.map(r => `${r.name} ${pct(after.filter(x => x.server === r.name).length, after.length)}`).join(', ')}`);
    await loop.stop();
    expect(loop.failed).to.equal(0);
  });

  it('honours the retry skip hook: a replica failing fast gets no second attempt of a call', async () => {
    retryReplicas = await startReplicas(3);
    const events: RetryEvent[] = [];
    const c = clientFor(retryReplicas.target, 'etcd_peak_ewma', [createRetryInterceptor({ onRetry: e => events.push(e), random: seededRandom(5) })]);
    clients.push(c);
    await warmUp(c, retryReplicas);
    const bad = retryReplicas.servers[0];
    bad.setBehaviour({ failRate: 1 });
    const { ok, errors } = await runRetriedCalls(600, 12, () => unary(c, 'x', { deadline: Date.now() + 10_000 }));
    console.log(`      peak_ewma + retry, 1 of 3 replicas always UNAVAILABLE (fast): ${ok} ok, ${errors.length} failed; ${events.length} retries; failing replica saw ${bad.calls} attempts`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(events.filter(e => e.attempt > 2).length).to.equal(0);
    expect(bad.calls).to.equal(events.length);
  });
});
