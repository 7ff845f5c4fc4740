import { expect } from 'chai';
import { MAX_PRECOMPUTED_PERIOD, PrecomputedWeightedScheduler, weightedPeriod } from '../../../src/balancer/schedulers/precomputed-weighted-scheduler';
import { SmoothWeightedScheduler } from '../../../src/balancer/schedulers/smooth-weighted-scheduler';
import { seededRandom } from '../../support/wait';

describe('PrecomputedWeightedScheduler (etcd_weighted_round_robin, O(1))', () => {
  it('yields exactly the heap scheduler\'s sequence, period after period', () => {
    const random = seededRandom(7);
    for (const weights of [[1], [1, 1, 1], [1, 2, 3, 4], [5, 1, 1], [0.5, 1.5], [3, 7, 11, 13, 1, 2]]) {
      const table = new PrecomputedWeightedScheduler(weights, () => 0);
      const heap = new SmoothWeightedScheduler(weights, () => 0);
      const period = weightedPeriod(weights);
      const fromTable = Array.from({ length: 3 * period }, () => table.pick(undefined));
      const fromHeap = Array.from({ length: 3 * period }, () => heap.pick(undefined));
      expect(fromTable, JSON.stringify(weights)).to.deep.equal(fromHeap);
      // Any start phase: every window of ΣW picks is exact.
      const phased = new PrecomputedWeightedScheduler(weights, random);
      const picks = Array.from({ length: 2 * period }, () => phased.pick(undefined));
      const ints = weights.map(w => w / Math.min(...weights));
      for (let start = 0; start + period <= picks.length; start += Math.max(1, Math.floor(period / 5))) {
        const counts = new Array<number>(weights.length).fill(0);
        for (const i of picks.slice(start, start + period)) counts[i]++;
        const total = ints.reduce((a, b) => a + b, 0);
        expect(counts, `${JSON.stringify(weights)} window at ${start}`).to.deep.equal(ints.map(w => (w * period) / total));
      }
    }
  });

  it('serves a pick that avoids endpoints as an extra pick: the rotation stays exact', () => {
    const table = new PrecomputedWeightedScheduler([1, 2, 3, 4], () => 0);
    const reference = new PrecomputedWeightedScheduler([1, 2, 3, 4], () => 0);
    const excluded = Uint8Array.from([0, 0, 0, 1]);
    const ordinary: number[] = [];
    for (let i = 0; i < 30; i++) {
      ordinary.push(table.pick(undefined));
      expect(table.pick(excluded)).to.not.equal(3);
    }
    expect(ordinary).to.deep.equal(Array.from({ length: 30 }, () => reference.pick(undefined)));
  });

  it('is chosen for periods up to the bound', () => {
    expect(weightedPeriod([1, 2, 3, 4])).to.equal(10);
    expect(weightedPeriod([0.5, 1.5])).to.equal(4);
    expect(MAX_PRECOMPUTED_PERIOD).to.equal(65_536);
  });
});
