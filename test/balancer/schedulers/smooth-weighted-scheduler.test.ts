import { expect } from 'chai';
import { MAX_EXACT_WEIGHT, SmoothWeightedScheduler, toIntegerWeights } from '../../../src/balancer/schedulers/smooth-weighted-scheduler';
import { seededRandom } from '../../support/wait';

function picks(scheduler: SmoothWeightedScheduler, count: number, excluded?: Uint8Array): number[] {
  return Array.from({ length: count }, () => scheduler.pick(excluded));
}

/** Counts per endpoint in every window of `length` consecutive picks. */
function windowCounts(sequence: number[], n: number, length: number): number[][] {
  const counts = new Array<number>(n).fill(0);
  const windows: number[][] = [];
  sequence.forEach((e, i) => {
    counts[e]++;
    if (i >= length) counts[sequence[i - length]]--;
    if (i >= length - 1) windows.push([...counts]);
  });
  return windows;
}

describe('SmoothWeightedScheduler (etcd_weighted_round_robin)', () => {
  it('gives every window of ΣW consecutive picks exactly W(i) picks of endpoint i, from any start phase', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const weights = [1, 2, 3, 4];
      const sequence = picks(new SmoothWeightedScheduler(weights, seededRandom(seed)), 2000);
      const windows = windowCounts(sequence, 4, 10);
      expect(windows.length).to.equal(1991);
      for (const counts of windows) expect(counts).to.deep.equal(weights);
    }
  });

  it('interleaves instead of bursting: every window of any length is within 1.5 picks of its proportional share', () => {
    const weights = [1, 2, 3, 4, 10];
    const total = 20;
    const sequence = picks(new SmoothWeightedScheduler(weights, seededRandom(7)), 400);
    let worst = 0;
    for (let length = 1; length <= total; length++) {
      for (const counts of windowCounts(sequence, weights.length, length)) {
        counts.forEach((c, i) => { worst = Math.max(worst, Math.abs(c - (length * weights[i]) / total)); });
      }
    }
    console.log(`      wrr 1:2:3:4:10 worst window deviation from proportional: ${worst.toFixed(2)} picks`);
    expect(worst).to.be.lessThan(1.5);
    let longestRun = 1;
    for (let i = 1, run = 1; i < sequence.length; i++) {
      run = sequence[i] === sequence[i - 1] ? run + 1 : 1;
      longestRun = Math.max(longestRun, run);
    }
    expect(longestRun).to.be.at.most(2);
  });

  it('is plain round robin with equal weights', () => {
    const sequence = picks(new SmoothWeightedScheduler([5, 5, 5], seededRandom(9)), 30);
    for (let i = 3; i < sequence.length; i++) expect(sequence[i]).to.equal(sequence[i - 3]);
    expect(new Set(sequence.slice(0, 3)).size).to.equal(3);
  });

  it('is exact for decimal fractional weights and proportional for others', () => {
    const half = picks(new SmoothWeightedScheduler([0.5, 1.5], () => 0), 400);
    for (const counts of windowCounts(half, 2, 4)) expect(counts).to.deep.equal([1, 3]);
    const thirds = picks(new SmoothWeightedScheduler([1 / 3, 2 / 3, 1], () => 0), 60_000);
    const counts = [0, 0, 0];
    for (const e of thirds) counts[e]++;
    expect(counts[0] / 60_000).to.be.closeTo(1 / 6, 1e-4);
    expect(counts[1] / 60_000).to.be.closeTo(2 / 6, 1e-4);
  });

  it('keeps exact integer arithmetic for huge weights over many periods', () => {
    const scheduler = new SmoothWeightedScheduler([1_000_000, 1, 300_000], () => 0);
    const counts = [0, 0, 0];
    for (let i = 0; i < 2_600_002; i++) counts[scheduler.pick(undefined)]++;
    expect(counts).to.deep.equal([2_000_000, 2, 600_000]);
  });

  it('skips excluded endpoints without losing their turn, and stays proportional', () => {
    const scheduler = new SmoothWeightedScheduler([1, 1, 2], () => 0);
    const excluded = new Uint8Array([0, 0, 1]);
    const skipping = picks(scheduler, 100, excluded);
    expect(skipping).to.not.include(2);
    // Endpoint 2 was owed its turns: it catches up first, then the exact schedule resumes.
    const counts = [0, 0, 0];
    for (const e of picks(scheduler, 4000)) counts[e]++;
    expect(counts[2] / 4000).to.be.closeTo(0.5, 0.03);
  });

  it('converts weights to small integers with the same proportions', () => {
    expect([...toIntegerWeights([2, 4, 6])]).to.deep.equal([1, 2, 3]);
    expect([...toIntegerWeights([0.25, 0.5])]).to.deep.equal([1, 2]);
    expect([...toIntegerWeights([1e-9, 1])]).to.deep.equal([1, 1_000_000]);
    expect([...toIntegerWeights([1_000_000.5, 1])]).to.deep.equal([2_000_001, 2]);
    const big = toIntegerWeights([123_456_789, 1000]);
    expect(big[0]).to.equal(MAX_EXACT_WEIGHT);
    expect(big[1]).to.equal(Math.round((1000 * MAX_EXACT_WEIGHT) / 123_456_789));
  });
});
