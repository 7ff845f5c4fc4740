import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { CallLoad, DEFAULT_FAILURE_CODES, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { EndpointState } from '../../../src/balancer/pool/endpoint-state';
import { EtcdPeakEwmaConfig, PeakEwmaStrategy, type PeakEwmaOptions } from '../../../src/balancer/policies/peak-ewma';
import { PROBE_MIN_PICKS, type PeakEwmaScheduler } from '../../../src/balancer/schedulers/peak-ewma-scheduler';
import { fixedTierView, Tier } from '../../../src/balancer/tiers/tier';
import { TieredPicker } from '../../../src/balancer/tiers/tiered-picker';
import { type TierScheduler } from '../../../src/balancer/schedulers/pick-strategy';
import { PickResultType, type PickResult, type SubchannelInterface } from '../../../src/common/grpc-experimental';
import { seededRandom } from '../../support/wait';

/** A strategy, its endpoints and an injected clock. */
class Bench {
  clockMs = 0;
  readonly strategy: PeakEwmaStrategy;
  readonly endpoints: { load: CallLoad }[];

  constructor(count: number, options: PeakEwmaOptions = {}, seed = 1) {
    const loadOptions = resolveCallLoadOptions({ nowMs: () => this.clockMs });
    this.endpoints = Array.from({ length: count }, () => ({ load: new CallLoad(loadOptions) }));
    this.strategy = new PeakEwmaStrategy(new EtcdPeakEwmaConfig(options), seededRandom(seed), () => this.clockMs, code => DEFAULT_FAILURE_CODES.has(code));
  }

  scheduler(weights = this.endpoints.map(() => 1), endpoints = this.endpoints): TierScheduler {
    return this.strategy.createScheduler(endpoints, weights);
  }

  estimate(i: number): number {
    return this.strategy.trackerOf(this.endpoints[i])!.estimate.estimateMs;
  }

  /** Places one call as TieredPicker does; returns its index and a function ending it with `code`. */
  start(scheduler: TierScheduler, excluded?: Uint8Array): { index: number; end: (code?: grpc.status) => void } {
    const index = scheduler.pick(excluded, this.clockMs);
    const load = this.endpoints[index].load;
    const hooks = scheduler.observeCall!(index, load.recordPick(this.clockMs), load.onCallEnded);
    hooks.onCallStarted();
    return { index, end: (code = grpc.status.OK) => hooks.onCallEnded(code) };
  }

  /** One call, alone, taking `latencyMs[index]`; returns the index. */
  call(scheduler: TierScheduler, latencyMs: readonly number[]): number {
    const { index, end } = this.start(scheduler);
    this.clockMs += latencyMs[index];
    end();
    return index;
  }
}

interface SimulationResult {
  picks: number[];
  /** Simulated ms at which `until` first returned true (NaN if never). */
  untilMs: number;
}

/**
 * Discrete-event open loop: Poisson arrivals at `ratePerMs`, each call taking
 * `latencyMs(i)` on endpoint i and ending with `code(i)`. Stops after
 * `durationMs` or once `until(picks in the last window)` holds.
 */
function simulate(
  bench: Bench,
  scheduler: TierScheduler,
  settings: {
    ratePerMs: number;
    durationMs: number;
    latencyMs: (i: number, random: () => number) => number;
    code?: (i: number) => grpc.status;
    seed?: number;
    windowMs?: number;
    until?: (windowPicks: number[]) => boolean;
  },
): SimulationResult {
  const random = seededRandom(settings.seed ?? 99);
  const n = bench.endpoints.length;
  const picks = new Array<number>(n).fill(0);
  let window = new Array<number>(n).fill(0);
  const windowMs = settings.windowMs ?? 1000;
  let windowEndMs = bench.clockMs + windowMs;
  const startMs = bench.clockMs;
  const ends: { atMs: number; end: () => void }[] = [];
  let nextArrivalMs = bench.clockMs - Math.log(1 - random()) / settings.ratePerMs;
  while (bench.clockMs - startMs < settings.durationMs) {
    if (ends.length > 0 && ends[0].atMs <= nextArrivalMs) {
      const { atMs, end } = ends.shift()!;
      bench.clockMs = atMs;
      end();
      continue;
    }
    bench.clockMs = nextArrivalMs;
    nextArrivalMs += -Math.log(1 - random()) / settings.ratePerMs;
    if (bench.clockMs >= windowEndMs) {
      if (settings.until?.(window)) return { picks, untilMs: bench.clockMs - startMs };
      window = new Array<number>(n).fill(0);
      windowEndMs += windowMs;
    }
    const { index, end } = bench.start(scheduler);
    picks[index]++;
    window[index]++;
    const atMs = bench.clockMs + settings.latencyMs(index, random);
    const code = settings.code?.(index) ?? grpc.status.OK;
    let k = ends.length;
    while (k > 0 && ends[k - 1].atMs > atMs) k--;
    ends.splice(k, 0, { atMs, end: () => end(code) });
  }
  for (const { end } of ends) end();
  return { picks, untilMs: Number.NaN };
}

const share = (picks: number[], i: number): number => picks[i] / picks.reduce((a, b) => a + b, 0);
const pctOf = (x: number): string => `${(100 * x).toFixed(2)}%`;

describe('PeakEwmaScheduler (etcd_peak_ewma)', () => {
  it('keeps a replica 20 ms slower to probes only, and once it recovers it is within 20 % of a fair share within 2 s (defaults)', () => {
    const bench = new Bench(5);
    const scheduler = bench.scheduler();
    let slowExtraMs = 20;
    // ~1 ms replicas with jitter (0.5-1.5 ms), one +20 ms; 1 call per ms.
    const latencyMs = (i: number, random: () => number): number => 0.5 + random() + (i === 4 ? slowExtraMs : 0);
    const slow = simulate(bench, scheduler, { ratePerMs: 1, durationMs: 30_000, latencyMs });
    const slowShare = share(slow.picks, 4);
    slowExtraMs = 0;
    // Judged on 500 ms windows: the first with ≥ 16 % (fair: 20 %) ends at most 2 s after the recovery.
    const recovered = simulate(bench, scheduler, {
      ratePerMs: 1, durationMs: 20_000, latencyMs, seed: 7, windowMs: 500,
      until: window => share(window, 4) >= 0.16,
    });
    console.log(`      simulated, 5 replicas at 1 call/ms, one +20 ms: slow share ${pctOf(slowShare)} over 30 s (probes every 500 ms); after it recovers, 16% of a 500 ms window (fair 20%) after ${(recovered.untilMs / 1000).toFixed(1)} s`);
    expect(slowShare).to.be.greaterThan(0);
    expect(slowShare).to.be.lessThan(0.005);
    expect(recovered.untilMs).to.be.at.most(2000);
  });

  it('weighs latency by outstanding calls per unit of weight: cost = estimate × (outstanding / relative weight + 1)', () => {
    const bench = new Bench(3, { choiceCount: 0 });
    const scheduler = bench.scheduler([1, 1, 2]);
    // Give each one sample: 1 ms, 2 ms, 3 ms (first samples replace, whoever is picked).
    const latencies = [1, 2, 3];
    const excluded = new Uint8Array(3);
    for (let k = 0; k < 3; k++) {
      const { index, end } = bench.start(scheduler, excluded);
      bench.clockMs += latencies[index];
      end();
      excluded[index] = 1;
    }
    expect([0, 1, 2].map(i => bench.estimate(i))).to.deep.equal([1, 2, 3]);
    // Idle, the fastest wins: a weight does not buy a slower replica the call.
    expect(scheduler.pick(undefined, bench.clockMs)).to.equal(0);
    const costs = scheduler as PeakEwmaScheduler;
    // Relative weights 0.75, 0.75, 1.5: two calls on the weight-2 endpoint cost what one costs on a weight-1 one.
    expect(costs.cost(2, 3, 2, 0)).to.be.closeTo(costs.cost(0, 3, 1, 0), 1e-9);
    expect(costs.cost(2, 3, 0, 0)).to.equal(costs.cost(0, 3, 0, 0));
    // The scale of the weights does not matter, only their ratios.
    const scaled = new Bench(3, { choiceCount: 0 }).scheduler([100, 100, 200]) as PeakEwmaScheduler;
    expect(scaled.cost(2, 3, 2, 0)).to.be.closeTo(costs.cost(2, 3, 2, 0), 1e-9);
  });

  it('follows the weights while replicas as fast as each other are idle (d = 2, full scan), instead of always giving the heavier one the call', () => {
    for (const choiceCount of [0, 2]) {
      const bench = new Bench(3, { choiceCount }, 7);
      const scheduler = bench.scheduler([1, 2, 3]);
      const picks = [0, 0, 0];
      for (let k = 0; k < 30_000; k++) picks[bench.call(scheduler, [1, 1.1, 0.9])]++;
      picks.forEach((n, i) => expect(n / 30_000, `choiceCount ${choiceCount}, weight ${i + 1}`).to.be.closeTo((i + 1) / 6, 0.015));
    }
  });

  it('counts outstanding calls on top of the tier\'s common load: a burst that loads every endpoint does not make a slow idle one cheap', () => {
    const bench = new Bench(5, { choiceCount: 0 });
    const scheduler = bench.scheduler();
    const excluded = new Uint8Array(5);
    // One answer each: 1.5 ms from endpoints 0-3, 21 ms from endpoint 4.
    for (let i = 0; i < 5; i++) {
      excluded.fill(1);
      excluded[i] = 0;
      const { end } = bench.start(scheduler, excluded);
      bench.clockMs += i === 4 ? 21 : 1.5;
      end();
    }
    // A burst of 100 calls at once (an open-loop client catching up after a stall), none ending meanwhile.
    // Finagle's cost (21 × 1 against 1.5 × (outstanding + 1)) would send the slow idle replica calls once the
    // fast ones hold 14 each; counted on top of the common load, the fast ones stay cheaper all along.
    const picks = [0, 0, 0, 0, 0];
    for (let k = 0; k < 100; k++) picks[bench.start(scheduler).index]++;
    expect(picks[4]).to.equal(0);
    expect(picks.slice(0, 4).every(n => n === 25)).to.equal(true);
  });

  it('costs latencies within 1.25× of the best candidate\'s as equal: outstanding calls spread the load among similar replicas', () => {
    const bench = new Bench(2, { choiceCount: 0 });
    const scheduler = bench.scheduler();
    const only = (i: number): Uint8Array => Uint8Array.from([0, 1], j => (j === i ? 0 : 1));
    for (const [i, latencyMs] of [[0, 1], [1, 1.2]] as const) {
      const { end } = bench.start(scheduler, only(i));
      bench.clockMs += latencyMs;
      end();
    }
    // 1 ms and 1.2 ms, calls that never end: picks alternate (by outstanding) instead of going to the 1 ms one
    // until it holds 1.2× the calls.
    const picks = [0, 0];
    for (let k = 0; k < 20; k++) picks[bench.start(scheduler).index]++;
    expect(picks).to.deep.equal([10, 10]);
  });

  it('takes the age of an endpoint\'s oldest call in flight beyond its rivals\' as a lower bound on its latency (a queue, a stall), not an age they share (a client stall)', () => {
    const place = (delayedOthersMs: number): number[] => {
      const bench = new Bench(3, { choiceCount: 0 });
      const scheduler = bench.scheduler();
      const only = (i: number): Uint8Array => Uint8Array.from([0, 1, 2], j => (j === i ? 0 : 1));
      for (let i = 0; i < 3; i++) {
        const { end } = bench.start(scheduler, only(i));
        bench.clockMs += 1;
        end();
      }
      // Endpoint 0 takes a call that does not come back; the others get one each `delayedOthersMs` later.
      bench.start(scheduler, only(0));
      bench.clockMs += delayedOthersMs;
      bench.start(scheduler, only(1));
      bench.start(scheduler, only(2));
      bench.clockMs += 50 - delayedOthersMs;
      const picks = [0, 0, 0];
      for (let k = 0; k < 6; k++) picks[bench.start(scheduler).index]++;
      return picks;
    };
    // Endpoint 0's call is 45 ms older than theirs: it gets none of the next 6 calls.
    expect(place(45)[0]).to.equal(0);
    // All three calls equally old (a stall of the client ages every call alike): endpoint 0 gets its turn.
    expect(place(0)[0]).to.equal(2);
  });

  it('gives a new endpoint the configured or the median estimate of its tier: neither starved nor flooded', () => {
    const bench = new Bench(4, { choiceCount: 0 });
    const [a, b, c, d] = bench.endpoints;
    // Cold start: nothing measured anywhere, no prior.
    const first = bench.scheduler([1, 1, 1], [a, b, c]);
    expect([0, 1, 2].every(i => Number.isNaN(bench.estimate(i)))).to.equal(true);
    const latencies = [1, 2, 10];
    const excluded = new Uint8Array(3);
    for (let k = 0; k < 3; k++) {
      const { index, end } = bench.start(first, excluded);
      bench.clockMs += latencies[index];
      end();
      excluded[index] = 1;
    }
    // d joins: the median of 1, 2, 10.
    bench.scheduler([1, 1, 1, 1], [a, b, c, d]);
    expect(bench.estimate(3)).to.equal(2);
    // Against a (1 ms, costed 1.25 ms: within 1.25× of the best counts as the best): idle a wins;
    // a with 2 calls outstanding (cost 3.75) loses to idle d (2); d with two (6) loses again.
    const pair = bench.scheduler([1, 1], [a, d]);
    expect(pair.pick(undefined, bench.clockMs)).to.equal(0);
    a.load.recordPick(bench.clockMs);
    a.load.recordPick(bench.clockMs);
    expect(pair.pick(undefined, bench.clockMs)).to.equal(1);
    d.load.recordPick(bench.clockMs);
    d.load.recordPick(bench.clockMs);
    expect(pair.pick(undefined, bench.clockMs)).to.equal(0);

    const configured = new Bench(2, { initialLatencyMs: 7 });
    configured.scheduler();
    expect([configured.estimate(0), configured.estimate(1)]).to.deep.equal([7, 7]);
  });

  it('costs an endpoint with an unknown estimate on load alone, as if it had its best rival\'s latency', () => {
    const bench = new Bench(2, { choiceCount: 0 });
    const [x, y] = bench.endpoints;
    const scheduler = bench.scheduler();
    const onlyX = new Uint8Array([0, 1]);
    const call = bench.start(scheduler, onlyX);
    bench.clockMs += 2;
    call.end();
    expect(bench.estimate(0)).to.equal(2);
    expect(Number.isNaN(bench.estimate(1))).to.equal(true);
    x.load.recordPick(bench.clockMs);
    expect(scheduler.pick(undefined, bench.clockMs)).to.equal(1);
    y.load.recordPick(bench.clockMs);
    y.load.recordPick(bench.clockMs);
    expect(scheduler.pick(undefined, bench.clockMs)).to.equal(0);
  });

  it('probes an endpoint not picked for probeIntervalMs (and PROBE_MIN_PICKS tier picks), at most once per interval', () => {
    const bench = new Bench(2, { probeIntervalMs: 1000, choiceCount: 0, initialLatencyMs: 1 });
    const scheduler = bench.scheduler();
    // Endpoint 1 answered slowly once: it is 50× costlier and never wins on cost.
    const excluded = new Uint8Array([1, 0]);
    const first = bench.start(scheduler, excluded);
    bench.clockMs += 50;
    first.end();
    expect(bench.estimate(1)).to.equal(50);
    const probeTimes: number[] = [];
    for (let k = 0; k < 5000; k++) {
      bench.clockMs += 1;
      if (bench.call(scheduler, [0.5, 50]) === 1) probeTimes.push(bench.clockMs);
    }
    const gaps = probeTimes.slice(1).map((t, i) => t - probeTimes[i]);
    console.log(`      probes of a 50× slower endpoint over ${(5000 * 1.5 / 1000).toFixed(1)} simulated s at one call at a time, 1 ms apart: ${probeTimes.length}, gaps ${gaps.map(g => g.toFixed(0)).join(', ')} ms`);
    expect(probeTimes.length).to.be.within(5, 8);
    for (const gap of gaps) expect(gap).to.be.within(1000, 1000 + 2 * 1.5 + 50);

    // Low traffic (one pick every 10 s): probes take at most 1 pick in PROBE_MIN_PICKS.
    let probes = 0;
    for (let k = 0; k < 1000; k++) {
      bench.clockMs += 10_000;
      if (bench.call(scheduler, [0.5, 50]) === 1) probes++;
    }
    console.log(`      at one call per 10 s (every endpoint idle past the interval): ${probes} probes in 1,000 calls`);
    expect(probes).to.be.within(1, Math.ceil(1000 / PROBE_MIN_PICKS));
  });

  it('does not let a replica that fails fast look fast: estimate kept, failure penalty added', () => {
    const bench = new Bench(4, {}, 5);
    const scheduler = bench.scheduler();
    const result = simulate(bench, scheduler, {
      ratePerMs: 1, durationMs: 20_000,
      latencyMs: (i, random) => (i === 0 ? 0.05 : 0.5 + random()),
      code: i => (i === 0 ? grpc.status.UNAVAILABLE : grpc.status.OK),
    });
    const failingShare = share(result.picks, 0);
    console.log(`      simulated, 4 replicas at 1 call/ms, one failing in 0.05 ms (others ~1 ms): failing replica got ${pctOf(failingShare)} of picks`);
    expect(failingShare).to.be.lessThan(0.01);
    // Its failures never became its estimate.
    expect(Number.isNaN(bench.estimate(0)) || bench.estimate(0) >= 0.5).to.equal(true);
  });

  it('never draws nor probes an excluded endpoint (retry skip hook)', () => {
    for (const choiceCount of [0, 1, 2, 3]) {
      const bench = new Bench(3, { choiceCount, probeIntervalMs: 1 });
      const scheduler = bench.scheduler();
      const excluded = new Uint8Array([0, 1, 1]);
      for (let k = 0; k < 500; k++) {
        bench.clockMs += 5;
        expect(scheduler.pick(excluded, bench.clockMs)).to.equal(0);
      }
    }
  });

  it('plugs into TieredPicker: latency from onCallStarted to onCallEnded, counters back to 0, hook pairs reused', () => {
    let clockMs = 0;
    const loadOptions = resolveCallLoadOptions({ nowMs: () => clockMs });
    const strategy = new PeakEwmaStrategy(new EtcdPeakEwmaConfig(), seededRandom(3), () => clockMs, code => DEFAULT_FAILURE_CODES.has(code));
    const eps = ['10.0.3.1:1', '10.0.3.2:1'].map(address => {
      const state = new EndpointState(address, [address], new CallLoad(loadOptions));
      const subchannel = { getAddress: () => address } as unknown as SubchannelInterface;
      const picker = { pick: (): PickResult => ({ pickResultType: PickResultType.COMPLETE, subchannel, status: null, onCallStarted: null, onCallEnded: null }) };
      state.child = { startConnecting() {}, exitIdle() {}, destroy() {}, getPicker: () => picker };
      return state;
    });
    const picker = new TieredPicker(fixedTierView([Tier.of(0, eps, strategy.createScheduler(eps, [1, 1]))]), () => undefined, true, () => clockMs);
    const pickArgs = { metadata: new grpc.Metadata(), extraPickInfo: {} };
    const results = Array.from({ length: 6 }, () => picker.pick(pickArgs));
    expect(eps.reduce((sum, e) => sum + e.load.outstanding(clockMs), 0)).to.equal(6);
    for (const r of results) r.onCallStarted!();
    clockMs += 4;
    for (const r of results) r.onCallEnded!(grpc.status.OK, '', new grpc.Metadata());
    expect(eps.map(e => e.load.outstanding(clockMs))).to.deep.equal([0, 0]);
    const measured = eps.map(e => strategy.trackerOf(e)!).filter(t => t.estimate.hasSample);
    expect(measured.length).to.be.greaterThan(0);
    for (const t of measured) expect(t.estimate.estimateMs).to.equal(4);
    expect(eps.reduce((sum, e) => sum + strategy.trackerOf(e)!.pooled, 0)).to.equal(6);
    const again = picker.pick(pickArgs);
    expect(eps.reduce((sum, e) => sum + strategy.trackerOf(e)!.pooled, 0)).to.equal(5);
    again.onCallStarted!();
    again.onCallEnded!(grpc.status.OK, '', new grpc.Metadata());
  });

  it('measures pick cost through TieredPicker (no assertion on speed)', () => {
    const n = 100;
    const loadOptions = resolveCallLoadOptions();
    const strategy = new PeakEwmaStrategy(new EtcdPeakEwmaConfig(), Math.random, () => performance.now(), code => DEFAULT_FAILURE_CODES.has(code));
    const eps = Array.from({ length: n }, (_, i) => {
      const address = `10.1.${i >> 8}.${i & 255}:1`;
      const state = new EndpointState(address, [address], new CallLoad(loadOptions));
      const subchannel = { getAddress: () => address } as unknown as SubchannelInterface;
      const picker = { pick: (): PickResult => ({ pickResultType: PickResultType.COMPLETE, subchannel, status: null, onCallStarted: null, onCallEnded: null }) };
      state.child = { startConnecting() {}, exitIdle() {}, destroy() {}, getPicker: () => picker };
      return state;
    });
    const picker = new TieredPicker(fixedTierView([Tier.of(0, eps, strategy.createScheduler(eps, eps.map((_, i) => 1 + (i % 7))))]), () => undefined, true, () => performance.now());
    const pickArgs = { metadata: new grpc.Metadata(), extraPickInfo: {} };
    const trailers = new grpc.Metadata();
    const run = (count: number): void => {
      for (let i = 0; i < count; i++) {
        const r = picker.pick(pickArgs);
        r.onCallStarted!();
        r.onCallEnded!(grpc.status.OK, '', trailers);
      }
    };
    run(20_000);
    const picks = 200_000;
    const start = process.hrtime.bigint();
    run(picks);
    const ns = Number(process.hrtime.bigint() - start) / picks;
    console.log(`      etcd_peak_ewma pick + hooks, ${n} endpoints, fake child: ${ns.toFixed(0)} ns per call`);
    expect(eps.every(e => e.load.outstanding(performance.now()) === 0)).to.equal(true);
  });
});
