/**
 * Property tests of the incremental tier state (issue 15): seeded random
 * sequences of flips, health changes (both are "usable or not" to the tiers),
 * weight and priority changes, adds and removes over ~50 endpoints in several
 * tiers. After every step the incremental state must equal one rebuilt from
 * scratch, and every scheduler must pick only members of its tier.
 */
import { expect } from 'chai';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { EndpointState } from '../../../src/balancer/pool/endpoint-state';
import { LeastRequestScheduler } from '../../../src/balancer/schedulers/least-request-scheduler';
import { PeakEwmaStrategy, EtcdPeakEwmaConfig } from '../../../src/balancer/policies/peak-ewma';
import { type Tier } from '../../../src/balancer/tiers/tier';
import { TierSet } from '../../../src/balancer/tiers/tier-set';
import { type TierScheduler } from '../../../src/balancer/schedulers/pick-strategy';
import { WeightedRandomScheduler } from '../../../src/balancer/schedulers/weighted-random-scheduler';
import { WeightedRoundRobinScheduler } from '../../../src/balancer/schedulers/weighted-round-robin-scheduler';
import { DEFAULT_FAILURE_CODES } from '../../../src/balancer/pool/call-load';
import { RingHashScheduler } from '../../../src/balancer/ring/ring-hash-scheduler';
import { seededRandom } from '../../support/wait';

const loadOptions = resolveCallLoadOptions({ nowMs: () => 0 });

type Factory = (random: () => number) => () => TierScheduler;
const FACTORIES: Record<string, Factory> = {
  etcd_ring_hash: random => () => new RingHashScheduler({ hashHeader: 'k', minRingSize: 64, maxRingSize: 4096, loadBound: 1.25, random }),
  etcd_weighted_round_robin: random => () => new WeightedRoundRobinScheduler([], random),
  etcd_weighted_random: random => () => new WeightedRandomScheduler([], random),
  etcd_least_request: random => () => new LeastRequestScheduler([], [], 2, random),
  etcd_peak_ewma: random => {
    const strategy = new PeakEwmaStrategy(new EtcdPeakEwmaConfig(), random, () => 0, code => DEFAULT_FAILURE_CODES.has(code));
    return () => strategy.createScheduler([], []);
  },
};

function endpoint(n: number, weight: number, priority: number): EndpointState {
  const address = `127.0.${n >> 8}.${n & 255}:80`;
  const state = new EndpointState(address, [address], new CallLoad(loadOptions));
  state.attributes = { weight, priority, metadata: {} };
  return state;
}

/** The tiers as a rebuild from scratch would make them: [priority, sorted "key=weight"] per active tier. */
function rebuilt(all: readonly EndpointState[]): [number, string[]][] {
  const usable = all.filter(e => e.usable);
  const priorities = [...new Set(usable.map(e => e.priority))].sort((a, b) => a - b);
  const serving = priorities.map(p => [p, usable.filter(e => e.priority === p && e.weight > 0).map(e => `${e.key}=${e.weight}`).sort()] as [number, string[]]);
  const active = serving.filter(([, members]) => members.length > 0);
  if (active.length > 0) return active;
  return priorities.map(p => [p, usable.filter(e => e.priority === p).map(e => `${e.key}=1`).sort()] as [number, string[]]);
}

function incremental(tiers: readonly Tier[]): [number, string[]][] {
  return tiers.map(t => [t.priority, t.endpoints.map(e => `${e.key}=${e.placedWeight}`).sort()]);
}

describe('incremental tiers: random event sequences equal a rebuild after every step', () => {
  for (const [policy, factory] of Object.entries(FACTORIES)) {
    it(`${policy}: 3,000 seeded steps over ~50 endpoints in 3 tiers`, () => {
      const random = seededRandom(policy.length * 7919);
      const tiers = new TierSet(factory(seededRandom(11)));
      const all: EndpointState[] = [];
      let serial = 0;
      const int = (n: number): number => Math.floor(random() * n);
      for (let i = 0; i < 50; i++) all.push(endpoint(serial++, 1 + int(5), int(3)));
      const counts = { flip: 0, weight: 0, drain: 0, priority: 0, add: 0, remove: 0 };
      for (let step = 0; step < 3000; step++) {
        const op = int(10);
        const e = all[int(all.length)];
        if (op < 4) {
          // A connectivity flip or a health change: both make the endpoint usable or not.
          e.usable = !e.usable;
          tiers.place(e, e.usable);
          counts.flip++;
        } else if (op < 6) {
          const weight = int(8) === 0 ? 0 : 1 + int(6);
          e.attributes = { ...e.attributes, weight };
          tiers.place(e, e.usable);
          counts[weight === 0 ? 'drain' : 'weight']++;
        } else if (op < 7) {
          e.attributes = { ...e.attributes, priority: int(3) };
          tiers.place(e, e.usable);
          counts.priority++;
        } else if (op < 8 || all.length < 30) {
          const added = endpoint(serial++, 1 + int(5), int(3));
          added.usable = int(2) === 0;
          all.push(added);
          tiers.place(added, added.usable);
          counts.add++;
        } else if (all.length > 30) {
          tiers.place(e, false);
          all.splice(all.indexOf(e), 1);
          counts.remove++;
        }
        const active = tiers.active;
        expect(incremental(active), `step ${step}`).to.deep.equal(rebuilt(all));
        // Each scheduler picks members of its tier only, also when avoiding one.
        for (const tier of active) {
          for (let k = 0; k < 3; k++) expect(tier.scheduler.pick(undefined, 0)).to.be.within(0, tier.size - 1);
          if (tier.size > 1) {
            tier.excluded[0] = 1;
            const index = tier.scheduler.pick(tier.excluded, 0);
            tier.excluded[0] = 0;
            expect(index, `step ${step}: excluded index picked`).to.be.within(1, tier.size - 1);
          }
          tier.endpoints.forEach((member, slot) => expect(member.slot).to.equal(slot));
        }
      }
      expect(Object.values(counts).every(c => c > 50), JSON.stringify(counts)).to.equal(true);
    });
  }
});

interface WeightedScheduler {
  add(endpoint: undefined, weight: number): void;
  remove(index: number): void;
  setWeight(index: number, weight: number): void;
}

/** The weights a scheduler should hold, changed with it (remove swaps the last one in, as the tier does). */
function mirrored(scheduler: WeightedScheduler): { weights: number[]; add(weight: number): void; remove(i: number): void; set(i: number, weight: number): void } {
  const weights: number[] = [];
  return {
    weights,
    add(weight) {
      weights.push(weight);
      scheduler.add(undefined, weight);
    },
    remove(i) {
      weights[i] = weights[weights.length - 1];
      weights.pop();
      scheduler.remove(i);
    },
    set(i, weight) {
      weights[i] = weight;
      scheduler.setWeight(i, weight);
    },
  };
}

/** Picks of each index in `picks[from, from + length)`. */
function windowCounts(picks: readonly number[], from: number, length: number, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (let i = from; i < from + length; i++) counts[picks[i]]++;
  return counts;
}

describe('WeightedRoundRobinScheduler: incremental EDF, exact period once stable', () => {
  // On the heap every deadline stays within one step of the current virtual time, so an
  // endpoint's lag behind its ideal share stays within a pick either way: a window of ΣW
  // picks is within ±2 of W(i) (±2 seen right after changes: ±1 would need every deadline
  // re-aligned to a period start, an O(n) reset per change). Exact once the period is rebuilt.
  it('after random changes: every ΣW-window within ±2 of W(i) on the heap, exact once the period is rebuilt', () => {
    const random = seededRandom(5);
    const int = (n: number): number => Math.floor(random() * n);
    const scheduler = new WeightedRoundRobinScheduler([], seededRandom(6));
    const mirror = mirrored(scheduler);
    const { weights } = mirror;
    for (let round = 0; round < 40; round++) {
      // A batch of changes: adds, removes and re-weights.
      for (let c = 0; c < 1 + int(6); c++) {
        const op = int(3);
        if (op === 0 || weights.length < 3) {
          mirror.add(1 + int(5));
        } else if (op === 1) {
          mirror.remove(int(weights.length));
        } else {
          const i = int(weights.length);
          mirror.set(i, 1 + int(5));
        }
      }
      const n = weights.length;
      const period = weights.reduce((a, b) => a + b, 0);
      const picks = Array.from({ length: n + 3 * period }, () => scheduler.pick(undefined));
      // On the heap: the first n + period picks.
      for (let from = 0; from + period <= n + period; from += Math.max(1, Math.floor(period / 7))) {
        const counts = windowCounts(picks, from, period, n);
        counts.forEach((c, i) => expect(Math.abs(c - weights[i]), `round ${round}, heap window at ${from}, weights ${weights}`).to.be.at.most(2));
      }
      // Exact once rebuilt (after n picks to measure the period and ΣW more).
      for (let from = n + period; from + period <= picks.length; from += Math.max(1, Math.floor(period / 7))) {
        expect(windowCounts(picks, from, period, n), `round ${round}, exact window at ${from}`).to.deep.equal(weights);
      }
    }
  });
});

describe('WeightedRandomScheduler: Fenwick draws while changing, alias table once stable', () => {
  it('shares within tolerance in both phases, after random changes', () => {
    const random = seededRandom(9);
    const int = (n: number): number => Math.floor(random() * n);
    const scheduler = new WeightedRandomScheduler([], seededRandom(10));
    const mirror = mirrored(scheduler);
    const { weights } = mirror;
    for (let i = 0; i < 40; i++) mirror.add(1 + int(9));
    for (let c = 0; c < 30; c++) {
      const i = int(weights.length);
      if (c % 3 === 0) mirror.remove(i);
      else mirror.set(i, 1 + int(9));
    }
    const total = weights.reduce((a, b) => a + b, 0);
    const draws = 100_000;
    for (const phase of ['fenwick', 'alias']) {
      const counts = new Array<number>(weights.length).fill(0);
      for (let k = 0; k < draws; k++) {
        // A change every few picks keeps the alias table from being built (the Fenwick phase).
        if (phase === 'fenwick' && k % 10 === 0) scheduler.setWeight(0, weights[0]);
        counts[scheduler.pick(undefined)]++;
      }
      weights.forEach((w, i) => expect(counts[i] / draws, `${phase} share of ${i}`).to.be.closeTo(w / total, 0.006));
    }
  });
});
