import { expect } from 'chai';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { LeastRequestScheduler } from '../../../src/balancer/schedulers/least-request-scheduler';
import { seededRandom } from '../../support/wait';

const NOW = 0;
const options = resolveCallLoadOptions({ nowMs: () => NOW });

function endpoints(outstanding: number[]): { load: CallLoad }[] {
  return outstanding.map(n => {
    const load = new CallLoad(options);
    for (let i = 0; i < n; i++) load.recordPick(NOW)();
    return { load };
  });
}

function shares(scheduler: LeastRequestScheduler, n: number, picks: number, excluded?: Uint8Array): number[] {
  const counts = new Array<number>(n).fill(0);
  for (let i = 0; i < picks; i++) counts[scheduler.pick(excluded, NOW)]++;
  return counts.map(c => c / picks);
}

describe('LeastRequestScheduler (etcd_least_request)', () => {
  it('full scan (choiceCount 0) picks the least outstanding, weight-aware', () => {
    const eps = endpoints([3, 1, 2]);
    expect(new LeastRequestScheduler(eps, [1, 1, 1], 0, seededRandom(1)).pick(undefined, NOW)).to.equal(1);
    // outstanding / weight: 3/1, 1/1, 2/4 → the heavy one despite more calls.
    expect(new LeastRequestScheduler(eps, [1, 1, 4], 0, seededRandom(1)).pick(undefined, NOW)).to.equal(2);
  });

  it('follows the weights exactly while every endpoint is idle (full scan, d = 2, d = 1), instead of always giving the heavier one the pick', () => {
    for (const choiceCount of [0, 1, 2]) {
      const result = shares(new LeastRequestScheduler(endpoints([0, 0, 0]), [1, 2, 3], choiceCount, seededRandom(5)), 3, 60_000);
      result.forEach((s, i) => expect(s, `choiceCount ${choiceCount}, weight ${i + 1}`).to.be.closeTo((i + 1) / 6, 0.01));
    }
  });

  it('with unequal weights and d = 2, still never picks the endpoint most loaded per unit of weight', () => {
    // outstanding / weight: 4, 1, 0 and 3: endpoint 0 loses every pairing; 2 wins all of its own.
    const result = shares(new LeastRequestScheduler(endpoints([4, 2, 0, 9]), [1, 2, 3, 3], 2, seededRandom(6)), 4, 30_000);
    expect(result[0]).to.equal(0);
    expect(result[2]).to.be.greaterThan(result[1]);
    expect(result[1]).to.be.greaterThan(result[3]);
  });

  it('breaks ties uniformly, in a full scan and among d choices', () => {
    for (const choiceCount of [0, 2]) {
      const result = shares(new LeastRequestScheduler(endpoints([0, 0, 0, 0]), [1, 1, 1, 1], choiceCount, seededRandom(3)), 4, 40_000);
      for (const s of result) expect(s).to.be.closeTo(0.25, 0.01);
    }
  });

  it('with d = 2 never picks the most loaded endpoint, and picks the least loaded most often', () => {
    const result = shares(new LeastRequestScheduler(endpoints([5, 0, 1, 2]), [1, 1, 1, 1], 2, seededRandom(4)), 4, 30_000);
    expect(result[0]).to.equal(0);
    // P(1 is among the two distinct draws) = 1/2.
    expect(result[1]).to.be.closeTo(0.5, 0.02);
    expect(result[1]).to.be.greaterThan(result[2]);
    expect(result[2]).to.be.greaterThan(result[3]);
  });

  it('counts the failure penalty against an idle-looking endpoint', () => {
    const eps = endpoints([0, 0, 0]);
    eps[0].load.addFailure(NOW);
    eps[0].load.addFailure(NOW);
    const result = shares(new LeastRequestScheduler(eps, [1, 1, 1], 0, seededRandom(8)), 3, 3000);
    expect(result[0]).to.equal(0);
  });

  it('avoids excluded endpoints in both modes', () => {
    for (const choiceCount of [0, 2, 3]) {
      const result = shares(new LeastRequestScheduler(endpoints([9, 0, 0]), [1, 1, 1], choiceCount, seededRandom(2)), 3, 3000, new Uint8Array([0, 1, 1]));
      expect(result).to.deep.equal([1, 0, 0]);
    }
  });
});
