/**
 * Slow start on an injected clock: Envoy's formula with exact figures, and the
 * warm-up bookkeeping (who warms, when the clock restarts, the timer's life),
 * through the tiers the way the balancer drives them.
 */
import { expect } from 'chai';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { EndpointState } from '../../../src/balancer/pool/endpoint-state';
import { EtcdLeastRequestConfig } from '../../../src/balancer/policies/least-request';
import { EtcdPeakEwmaConfig } from '../../../src/balancer/policies/peak-ewma';
import {
  parseSlowStart, slowStartFactor, slowStartTickMs, SlowStartTracker, type SlowStartConfig,
} from '../../../src/balancer/pool/slow-start';
import { TierSet } from '../../../src/balancer/tiers/tier-set';
import { WeightedRoundRobinScheduler } from '../../../src/balancer/schedulers/weighted-round-robin-scheduler';
import { EtcdWeightedRoundRobinConfig } from '../../../src/balancer/policies/weighted-round-robin';
import { quietly } from '../../support/grpc-log';
import { seededRandom } from '../../support/wait';

const config = (windowMs: number, aggression = 1, minWeightPercent = 10): SlowStartConfig => ({ windowMs, aggression, minWeightPercent });

describe('slow start: formula (Envoy slow_start_config)', () => {
  it('linear by default, floored at minWeightPercent, 1 from the end of the window', () => {
    const c = config(10_000);
    expect(slowStartFactor(c, 0)).to.equal(0.1); // max(1 ms, 0) / 10 s = 0.0001 < 10 %
    expect(slowStartFactor(c, 500)).to.equal(0.1);
    expect(slowStartFactor(c, 1000)).to.equal(0.1);
    expect(slowStartFactor(c, 2500)).to.equal(0.25);
    expect(slowStartFactor(c, 7500)).to.equal(0.75);
    expect(slowStartFactor(c, 9999)).to.be.closeTo(0.9999, 1e-12);
    expect(slowStartFactor(c, 10_000)).to.equal(1);
    expect(slowStartFactor(c, 1e9)).to.equal(1);
  });

  it('aggression bends the curve: time_factor ^ (1 / aggression)', () => {
    expect(slowStartFactor(config(10_000, 2), 2500)).to.be.closeTo(0.5, 1e-12); // 0.25^(1/2)
    expect(slowStartFactor(config(10_000, 0.5), 5000)).to.be.closeTo(0.25, 1e-12); // 0.5^2
    expect(slowStartFactor(config(10_000, 0.5), 2000)).to.equal(0.1); // 0.04 floored
  });

  it('minWeightPercent sets the floor; 0 leaves only the 0.1 % guard', () => {
    expect(slowStartFactor(config(10_000, 1, 50), 2000)).to.equal(0.5);
    expect(slowStartFactor(config(10_000, 1, 50), 6000)).to.equal(0.6);
    expect(slowStartFactor(config(10_000, 1, 0), 3)).to.equal(0.001);
    expect(slowStartFactor(config(10_000, 1, 0), 50)).to.equal(0.005);
  });

  it('recomputes every max(100 ms, windowMs / 10)', () => {
    expect(slowStartTickMs(config(3000))).to.equal(300);
    expect(slowStartTickMs(config(500))).to.equal(100);
    expect(slowStartTickMs(config(60_000))).to.equal(6000);
  });

  it('parses with defaults and rejects bad values naming the field', () => {
    expect(parseSlowStart({})).to.equal(undefined);
    expect(parseSlowStart({ slowStart: { windowMs: 3000 } })).to.deep.equal({ windowMs: 3000, aggression: 1, minWeightPercent: 10 });
    expect(parseSlowStart({ slowStart: { windowMs: 3000, aggression: 2.5, minWeightPercent: 0 } })).to.deep.equal({ windowMs: 3000, aggression: 2.5, minWeightPercent: 0 });
    expect(() => parseSlowStart({ slowStart: {} })).to.throw('slowStart.windowMs must be a number in (0, 86400000] (required), got undefined');
    expect(() => parseSlowStart({ slowStart: { windowMs: '3s' } })).to.throw('slowStart.windowMs must be a number');
    expect(() => parseSlowStart({ slowStart: { windowMs: 1000, aggression: 0 } })).to.throw('slowStart.aggression must be a number in (0, 1000], got 0');
    expect(() => parseSlowStart({ slowStart: { windowMs: 1000, minWeightPercent: 101 } })).to.throw('slowStart.minWeightPercent must be a number in [0, 100], got 101');
    expect(() => parseSlowStart({ slowStart: 3000 })).to.throw('slowStart must be an object like {"windowMs":30000}, got 3000');
  });

  it('is a field of every policy config, round-tripped by toJsonObject, and not part of the strategy key', () => {
    const wrr = EtcdWeightedRoundRobinConfig.createFromJson({ slowStart: { windowMs: 3000 } });
    expect(wrr.slowStart).to.deep.equal({ windowMs: 3000, aggression: 1, minWeightPercent: 10 });
    expect(wrr.toJsonObject()).to.deep.equal({ etcd_weighted_round_robin: { slowStart: { windowMs: 3000, aggression: 1, minWeightPercent: 10 } } });
    expect(wrr.strategyKey()).to.equal(EtcdWeightedRoundRobinConfig.createFromJson({}).strategyKey());
    expect(EtcdLeastRequestConfig.createFromJson({ choiceCount: 3, slowStart: { windowMs: 10, aggression: 3 } }).slowStart?.aggression).to.equal(3);
    expect(EtcdPeakEwmaConfig.createFromJson({ slowStart: { windowMs: 10 } }).slowStart?.windowMs).to.equal(10);
    expect(() => quietly(() => EtcdPeakEwmaConfig.createFromJson({ slowStart: { windowMs: 0 } }))).to.throw('slowStart.windowMs');
  });
});

describe('slow start: warm-up bookkeeping on an injected clock', () => {
  const loadOptions = resolveCallLoadOptions({ nowMs: () => 0 });
  let now: number;
  let tiers: TierSet;
  let tracker: SlowStartTracker;
  let reweighed: number;

  function endpoint(n: number, weight = 1): EndpointState {
    const address = `127.0.0.${n}:80`;
    const state = new EndpointState(address, [address], new CallLoad(loadOptions));
    state.attributes = { weight, priority: 0, metadata: {} };
    return state;
  }

  /** What the balancer does on a usable flip. */
  function setUsable(e: EndpointState, usable: boolean): void {
    e.usable = usable;
    if (usable) tracker.becameUsable(e);
    else tracker.becameUnusable(e);
    tiers.place(e, usable);
  }

  beforeEach(() => {
    now = 1_000_000;
    reweighed = 0;
    tiers = new TierSet(() => new WeightedRoundRobinScheduler([], seededRandom(1)));
    tracker = new SlowStartTracker(() => now, e => {
      reweighed++;
      if (e.usable) tiers.place(e, true);
    });
    tracker.configure(config(3000));
  });
  afterEach(() => tracker.destroy());

  it('endpoints of the first resolution start at full weight; one added later warms from READY, not from discovery', () => {
    const initial = endpoint(1, 4);
    tracker.admit(initial, true);
    now += 20;
    setUsable(initial, true);
    expect(initial.placedWeight).to.equal(4);
    expect(tracker.ticking).to.equal(false);

    const joining = endpoint(2, 4);
    tracker.admit(joining, false);
    now += 5000; // discovered long before it connects: the clock has not started
    setUsable(joining, true);
    expect(joining.placedWeight).to.be.closeTo(0.4, 1e-12);
    expect(joining.warmStartMs).to.equal(now);
    expect(tracker.ticking).to.equal(true);

    now += 1500;
    tracker.tick();
    expect(joining.placedWeight).to.be.closeTo(2, 1e-12);
    expect(reweighed).to.equal(1);
    now += 1499;
    tracker.tick();
    expect(joining.placedWeight).to.be.closeTo(4 * 2999 / 3000, 1e-9);
    now += 1;
    tracker.tick();
    expect(joining.placedWeight).to.equal(4);
    expect(joining.warmStartMs).to.equal(undefined);
    expect(tracker.ticking).to.equal(false);
    expect(tracker.warmingCount).to.equal(0);
    // The warm endpoint stays put on later ticks (only warming ones are recomputed).
    tracker.tick();
    expect(reweighed).to.equal(3);
  });

  it('an endpoint of the first resolution that comes up only after the window starts cold', () => {
    const late = endpoint(1);
    tracker.admit(late, true);
    now += 3001;
    setUsable(late, true);
    expect(late.placedWeight).to.equal(0.1);
  });

  it('restarts after more than windowMs unusable; a shorter blip continues the clock (and leaves a warm endpoint warm)', () => {
    const e = endpoint(1);
    tracker.admit(e, false);
    setUsable(e, true);
    now += 1500;
    tracker.tick();
    expect(e.placedWeight).to.equal(0.5);
    setUsable(e, false);
    now += 1000; // back within the window: same clock, 2.5 s in
    setUsable(e, true);
    expect(e.placedWeight).to.be.closeTo(2500 / 3000, 1e-12);
    now += 500;
    tracker.tick();
    expect(e.placedWeight).to.equal(1);
    setUsable(e, false);
    now += 3000; // exactly windowMs: not longer
    setUsable(e, true);
    expect(e.placedWeight).to.equal(1);
    setUsable(e, false);
    now += 3001;
    setUsable(e, true);
    expect(e.placedWeight).to.equal(0.1);
    expect(e.warmStartMs).to.equal(now);
  });

  it('an endpoint absent from the resolution: a quick return keeps its state, a long absence warms it again', () => {
    const warm = endpoint(1);
    tracker.admit(warm, true);
    setUsable(warm, true);
    now += 10_000;
    tracker.forget(warm);
    tiers.place(warm, false);
    now += 2000;
    const back = endpoint(1); // same key, new state (new child)
    tracker.admit(back, false);
    setUsable(back, true);
    expect(back.placedWeight).to.equal(1);

    tracker.forget(back);
    tiers.place(back, false);
    now += 3001;
    const late = endpoint(1);
    tracker.admit(late, false);
    setUsable(late, true);
    expect(late.placedWeight).to.equal(0.1);

    // A warming endpoint replaced quickly (e.g. a health-check config change) continues its clock.
    now += 1500;
    tracker.tick();
    tracker.forget(late);
    tiers.place(late, false);
    const replaced = endpoint(1);
    tracker.admit(replaced, false);
    now += 300;
    setUsable(replaced, true);
    expect(replaced.placedWeight).to.be.closeTo(1800 / 3000, 1e-12);
  });

  it('composes with weights, draining and priorities: the effective weight scales the weight, 0 stays draining', () => {
    const serving = endpoint(1, 10);
    tracker.admit(serving, true);
    setUsable(serving, true);
    const joining = endpoint(2, 10);
    tracker.admit(joining, false);
    setUsable(joining, true);
    expect(joining.tier).to.equal(serving.tier);
    expect(joining.placedWeight).to.equal(1);
    // Draining while warming: moves to the draining group (weight 0 × factor = 0), back when re-weighted.
    joining.attributes = { weight: 0, priority: 0, metadata: {} };
    tiers.place(joining, true);
    expect(joining.tier!.draining).to.equal(true);
    now += 1500;
    tracker.tick();
    expect(joining.tier!.draining).to.equal(true);
    joining.attributes = { weight: 10, priority: 1, metadata: {} };
    tiers.place(joining, true);
    expect(joining.tier!.draining).to.equal(false);
    expect(joining.tier!.priority).to.equal(1);
    expect(joining.placedWeight).to.equal(5);
    expect(serving.tier!.size).to.equal(1);
  });

  it('turning slow start off puts every warming endpoint at full weight and stops the timer; a new window applies at once', () => {
    const a = endpoint(1, 2);
    const b = endpoint(2, 2);
    for (const e of [a, b]) {
      tracker.admit(e, false);
      setUsable(e, true);
    }
    now += 600;
    tracker.configure(config(6000));
    expect(a.placedWeight).to.be.closeTo(0.2, 1e-12); // 600 / 6000 = 10 %
    now += 2400;
    tracker.tick();
    expect(a.placedWeight).to.be.closeTo(1, 1e-12);
    tracker.configure(undefined);
    expect([a.placedWeight, b.placedWeight]).to.deep.equal([2, 2]);
    expect(tracker.ticking).to.equal(false);
    expect(tracker.warmingCount).to.equal(0);
  });

  it('WRR gives a warming endpoint its effective share of picks', () => {
    const a = endpoint(1);
    const b = endpoint(2);
    tracker.admit(a, true);
    setUsable(a, true);
    tracker.admit(b, false);
    setUsable(b, true);
    now += 750; // factor 0.25
    tracker.tick();
    const tier = tiers.active[0];
    const counts = [0, 0];
    for (let i = 0; i < 1000; i++) counts[tier.endpoints[tier.scheduler.pick(undefined, 0)] === a ? 0 : 1]++;
    expect(counts).to.deep.equal([800, 200]);
  });
});
