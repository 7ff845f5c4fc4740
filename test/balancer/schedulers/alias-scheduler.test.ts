import { expect } from 'chai';
import { AliasScheduler } from '../../../src/balancer/schedulers/alias-scheduler';
import { seededRandom } from '../../support/wait';

describe('AliasScheduler (etcd_weighted_random)', () => {
  it('picks endpoint i with probability W(i)/ΣW (seeded, 100,000 draws, within 0.5 points)', () => {
    const weights = [1, 2, 3, 4, 0.5];
    const total = weights.reduce((a, b) => a + b);
    const scheduler = new AliasScheduler(weights, seededRandom(42));
    const counts = new Array<number>(weights.length).fill(0);
    for (let i = 0; i < 100_000; i++) counts[scheduler.pick(undefined)]++;
    const shares = counts.map(c => c / 1000);
    console.log(`      weighted random shares (%): ${shares.map(s => s.toFixed(2)).join(' ')} vs ${weights.map(w => ((100 * w) / total).toFixed(2)).join(' ')}`);
    weights.forEach((w, i) => expect(shares[i]).to.be.closeTo((100 * w) / total, 0.5));
  });

  it('builds exact tables for equal and single weights', () => {
    const one = new AliasScheduler([7], () => 0.99);
    expect(one.pick(undefined)).to.equal(0);
    const equal = new AliasScheduler([2, 2, 2, 2], seededRandom(1));
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) counts[equal.pick(undefined)]++;
    for (const c of counts) expect(c / 40_000).to.be.closeTo(0.25, 0.01);
  });

  it('never returns an excluded endpoint, even when it holds almost all the weight', () => {
    const scheduler = new AliasScheduler([1_000_000, 1, 3], seededRandom(5));
    const excluded = new Uint8Array([1, 0, 0]);
    const counts = [0, 0, 0];
    for (let i = 0; i < 8000; i++) counts[scheduler.pick(excluded)]++;
    expect(counts[0]).to.equal(0);
    expect(counts[2] / 8000).to.be.closeTo(0.75, 0.03);
  });
});
