import { expect } from 'chai';
import { Metadata } from '@grpc/grpc-js';
import { RetryBudget } from '../../src/interceptor/retry-budget';
import { NO_PUSHBACK, PUSHBACK_STOP, readPushbackMs } from '../../src/interceptor/retry-pushback';
import { seededRandom } from '../support/wait';

/** Simulates sequential calls against a budget, as a logical call spends it (one token per failed call); returns attempts made. */
function simulate(budget: RetryBudget, calls: number, maxAttempts: number, fails: (attempt: number) => boolean): number {
  let attempts = 0;
  for (let c = 0; c < calls; c++) {
    for (let a = 1; a <= maxAttempts; a++) {
      attempts++;
      if (!fails(attempts)) {
        budget.recordSuccess();
        break;
      }
      if (a === 1) budget.recordFailure();
      if (!budget.canRetry()) break;
    }
  }
  return attempts;
}

describe('retry budget (gRFC A6 retryThrottling)', () => {
  it('one dead replica out of four (first attempts failing 25%) never drains it', () => {
    const budget = new RetryBudget(100, 1);
    const random = seededRandom(7);
    // A failed first attempt is retried on a live replica (the pickers skip the dead one).
    let lowest = budget.tokens;
    for (let c = 0; c < 10_000; c++) {
      if (random() < 0.25) {
        budget.recordFailure();
        lowest = Math.min(lowest, budget.tokens);
        expect(budget.canRetry()).to.equal(true);
      }
      budget.recordSuccess();
    }
    console.log(`      25% failing first attempts over 10000 calls: tokens never below ${lowest}`);
    expect(lowest).to.be.greaterThan(90);
  });

  it('a total outage retries fewer than maxTokens/2 calls, then makes one attempt per call', () => {
    const budget = new RetryBudget(100, 1);
    const calls = 1000;
    const attempts = simulate(budget, calls, 3, () => true);
    console.log(`      total outage: ${calls} calls made ${attempts} attempts (${attempts - calls} retries)`);
    // Every failed call takes a token, retries stop at half: 49 calls retried, twice each.
    expect(attempts - calls).to.equal(98);
    expect(budget.canRetry()).to.equal(false);
    expect(budget.tokens).to.equal(0);
  });

  it('recovers: successes refill it by tokenRatio, capped at maxTokens', () => {
    const budget = new RetryBudget(10, 0.5);
    for (let i = 0; i < 10; i++) budget.recordFailure();
    expect(budget.tokens).to.equal(0);
    expect(budget.canRetry()).to.equal(false);
    for (let i = 0; i < 11; i++) budget.recordSuccess();
    expect(budget.tokens).to.equal(5.5);
    expect(budget.canRetry()).to.equal(true);
    for (let i = 0; i < 100; i++) budget.recordSuccess();
    expect(budget.tokens).to.equal(10);
  });

  it('retries only while tokens are strictly above half', () => {
    const budget = new RetryBudget(4, 1);
    budget.recordFailure();
    expect(budget.canRetry()).to.equal(true); // 3 > 2
    budget.recordFailure();
    expect(budget.canRetry()).to.equal(false); // 2 is not > 2
  });
});

describe('server pushback', () => {
  const md = (value?: string): Metadata => {
    const m = new Metadata();
    if (value !== undefined) m.set('grpc-retry-pushback-ms', value);
    return m;
  };
  it('reads a non-negative integer as a delay', () => {
    expect(readPushbackMs(md('0'))).to.equal(0);
    expect(readPushbackMs(md('150'))).to.equal(150);
  });
  it('absent means the normal backoff', () => {
    expect(readPushbackMs(md())).to.equal(NO_PUSHBACK);
    expect(readPushbackMs(undefined)).to.equal(NO_PUSHBACK);
  });
  it('negative or invalid means do not retry', () => {
    for (const v of ['-1', 'soon', '1.5', '', '12345678901']) expect(readPushbackMs(md(v)), v).to.equal(PUSHBACK_STOP);
  });
});
