import { expect } from 'chai';
import { HEDGE_DELAY_FLOOR_MS, HEDGE_DELAY_MIN_SAMPLES, HEDGE_DELAY_WINDOW, HedgeDelayEstimator, select } from '../../src/interceptor/hedge-delay';
import { seededRandom } from '../support/wait';

/** The nearest-rank p95 of `values`, by sorting (the reference the estimator must match). */
function p95(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(0.95 * sorted.length) - 1];
}

describe('adaptive hedging delay (p95 over the last 1,000 first attempts)', () => {
  it('documents its constants: window 1,000, 100 samples before hedging, 2 ms floor', () => {
    expect([HEDGE_DELAY_WINDOW, HEDGE_DELAY_MIN_SAMPLES, HEDGE_DELAY_FLOOR_MS]).to.deep.equal([1000, 100, 2]);
  });

  it('gives no delay (no hedging) until the window holds 100 samples', () => {
    const e = new HedgeDelayEstimator();
    for (let i = 0; i < 99; i++) e.record(10);
    expect(e.delayMs()).to.equal(undefined);
    e.record(10);
    expect(e.delayMs()).to.equal(10);
  });

  it('is the nearest-rank p95 of the window, checked against a sort (seeded lognormal-ish samples)', () => {
    const random = seededRandom(5);
    const e = new HedgeDelayEstimator(1000, 100, 0, 1); // recompute on every sample
    const all: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const v = Math.exp(random() * 3) + (random() < 0.03 ? 80 : 0);
      all.push(v);
      e.record(v);
      if (i >= 99 && i % 97 === 0) expect(e.delayMs(), `after ${i + 1}`).to.equal(p95(all.slice(-1000)));
    }
  });

  it('floors the delay at 2 ms', () => {
    const e = new HedgeDelayEstimator();
    for (let i = 0; i < 200; i++) e.record(0.3);
    expect(e.delayMs()).to.equal(2);
  });

  it('follows a latency step up within a few dozen samples, and down after the window turns over', () => {
    const random = seededRandom(8);
    const e = new HedgeDelayEstimator();
    for (let i = 0; i < 1000; i++) e.record(5 + random());
    expect(e.delayMs()).to.be.within(5, 6);
    let up = 0;
    while (e.delayMs()! < 40 && up < 1000) {
      e.record(40 + random());
      up++;
    }
    let down = 0;
    while (e.delayMs()! >= 40 && down < 2000) {
      e.record(5 + random());
      down++;
    }
    console.log(`      5 → 40 ms: p95 followed after ${up} samples; 40 → 5 ms after ${down}`);
    expect(up).to.be.at.most(100); // 50 samples above the old p95, rounded to the next recompute
    expect(down).to.be.within(900, 1000);
  });

  it('ignores negative and non-finite samples', () => {
    const e = new HedgeDelayEstimator(10, 1, 0, 1);
    e.record(-1);
    e.record(NaN);
    e.record(Infinity);
    expect(e.samples).to.equal(0);
    e.record(3);
    expect(e.delayMs()).to.equal(3);
  });

  it('select() finds every rank, with many equal values too', () => {
    const random = seededRandom(2);
    for (const distinct of [3, 1000]) {
      const values = Array.from({ length: 301 }, () => Math.floor(random() * distinct));
      const sorted = [...values].sort((a, b) => a - b);
      for (let k = 0; k < values.length; k += 7) expect(select(Float64Array.from(values), values.length, k)).to.equal(sorted[k]);
    }
  });
});
