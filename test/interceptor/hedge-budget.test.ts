import { expect } from 'chai';
import { HedgeBudget } from '../../src/interceptor/hedge-budget';
import { resolveRetryOptions } from '../../src/interceptor/retry-options';
import { seededRandom } from '../support/wait';

describe('hedge budget (+ratio per call, −1 per hedge, hedge while positive)', () => {
  it('every call wanting a hedge: at most ratio × calls + 1 hedges, from the first call', () => {
    const budget = new HedgeBudget(0.1, 10);
    const hedged: number[] = [];
    for (let c = 0; c < 1000; c++) {
      budget.recordCall();
      if (budget.tryTake()) hedged.push(c);
    }
    expect(hedged[0]).to.equal(0); // the first call's own deposit pays for its hedge
    expect(hedged.length).to.be.within(100, 101);
    expect(budget.tokens).to.be.above(-1);
  });

  it('saves at most its cap during a quiet spell: a burst of cap hedges, then the ratio', () => {
    const budget = new HedgeBudget(0.1, 10);
    for (let c = 0; c < 10_000; c++) budget.recordCall();
    expect(budget.tokens).to.equal(10);
    let burst = 0;
    while (budget.tryTake()) burst++;
    expect(burst).to.equal(10);
    let later = 0;
    for (let c = 0; c < 500; c++) {
      budget.recordCall();
      if (budget.tryTake()) later++;
    }
    expect(later).to.be.within(49, 51);
  });

  it('hedges fewer calls than the ratio when fewer are slow (5 % slow of 10,000, seeded)', () => {
    const budget = new HedgeBudget(0.1, 10);
    const random = seededRandom(3);
    let wanted = 0;
    let sent = 0;
    for (let c = 0; c < 10_000; c++) {
      budget.recordCall();
      if (random() < 0.05) {
        wanted++;
        if (budget.tryTake()) sent++;
      }
    }
    expect(sent).to.equal(wanted);
  });

  it('the cap is 100 calls\' worth of deposits, at least 1 token', () => {
    expect(resolveRetryOptions({ hedging: {}, isIdempotent: () => true }).hedging?.maxHedgeTokens).to.equal(10);
    expect(resolveRetryOptions({ hedging: { maxHedgeRatio: 0.001 }, isIdempotent: () => true }).hedging?.maxHedgeTokens).to.equal(1);
    expect(resolveRetryOptions({ hedging: { maxHedgeRatio: 2 }, isIdempotent: () => true }).hedging?.maxHedgeTokens).to.equal(200);
  });
});
