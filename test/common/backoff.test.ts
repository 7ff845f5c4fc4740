import { expect } from 'chai';
import { Backoff, equalJitter, fullJitter, proportionalJitter } from '../../src/common/backoff';
import { RetryBackoff } from '../../src/interceptor/retry-backoff';
import { seededRandom } from '../support/wait';

describe('backoff', () => {
  it('grows the step by the multiplier up to the cap, and resets', () => {
    const steps: number[] = [];
    const backoff = new Backoff({ initialMs: 25, maxMs: 1000, jitter: baseMs => baseMs });
    for (let i = 0; i < 8; i++) steps.push(backoff.next());
    expect(steps).to.deep.equal([25, 50, 100, 200, 400, 800, 1000, 1000]);
    backoff.reset();
    expect(backoff.next()).to.equal(25);
  });

  it('never exceeds a cap below the initial step (TTL/2 for short TTLs)', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 40, jitter: equalJitter, random: () => 0.999 });
    for (let i = 0; i < 5; i++) expect(backoff.next()).to.be.lessThan(40);
  });

  it('full jitter draws in [0, step); equal jitter in [step/2, step); proportional takes off up to the fraction', () => {
    expect(fullJitter(100, () => 0)).to.equal(0);
    expect(fullJitter(100, () => 0.999)).to.equal(99);
    expect(fullJitter(100, () => 0.5)).to.equal(50);
    expect(equalJitter(100, () => 0)).to.equal(50);
    expect(equalJitter(100, () => 0.999)).to.be.within(99, 100);
    expect(proportionalJitter(0.2)(100, () => 0)).to.equal(100);
    expect(proportionalJitter(0.2)(100, () => 0.999)).to.equal(80);
  });

  it('a broken random source cannot produce a negative or huge delay', () => {
    for (const r of [-5, 7, NaN]) {
      expect(fullJitter(100, () => r)).to.equal(0);
      expect(equalJitter(100, () => r)).to.equal(50);
      expect(proportionalJitter(0.2)(100, () => r)).to.equal(100);
    }
  });

  it('full jitter is uniform over a seeded run (mean near half the step)', () => {
    const random = seededRandom(3);
    let sum = 0;
    for (let i = 0; i < 10_000; i++) sum += fullJitter(1000, random);
    expect(sum / 10_000).to.be.within(480, 520);
  });

  it('equal jitter doubles to the cap over a seeded run', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 500, jitter: equalJitter, random: seededRandom(7) });
    const bases = [100, 200, 400, 500, 500, 500];
    for (const base of bases) expect(backoff.next()).to.be.within(base / 2, base - 1e-9);
  });

  it('a retry backoff restarts from the initial step after server pushback', () => {
    const retry = new RetryBackoff({ initialBackoffMs: 100, maxBackoffMs: 1000, backoffMultiplier: 2, random: () => 0.999 });
    expect([retry.nextDelayMs(-1), retry.nextDelayMs(-1), retry.nextDelayMs(-1)]).to.deep.equal([99, 199, 399]);
    expect(retry.nextDelayMs(250)).to.equal(250);
    expect(retry.nextDelayMs(-1)).to.equal(99);
  });
});
