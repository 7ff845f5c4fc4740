import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { DEFAULT_FAILURE_CODES } from '../../src/balancer/call-load';
import { PeakEwmaEstimate } from '../../src/balancer/peak-ewma-estimate';
import { LatencyTracker } from '../../src/balancer/peak-ewma-latency-tracker';

const DECAY_MS = 10_000;

describe('PeakEwmaEstimate (etcd_peak_ewma)', () => {
  it('rises at once on a slower sample', () => {
    const e = new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0);
    e.observe(1, 10, true);
    expect(e.estimateMs).to.equal(1);
    // 1 ms after the last sample: an EWMA would barely move; the peak takes it whole.
    e.observe(25, 11, true);
    expect(e.estimateMs).to.equal(25);
  });

  it('decays towards faster samples with time constant decayMs, however many samples there are', () => {
    const single = new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0);
    single.observe(20, 0, true);
    single.observe(0, DECAY_MS, true);
    expect(single.estimateMs).to.be.closeTo(20 * Math.exp(-1), 1e-9);

    // 1,000 samples of 1 ms over one decay period: excess 19 ms shrinks by e^-1, as with one sample.
    const many = new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0);
    many.observe(20, 0, true);
    for (let k = 1; k <= 1000; k++) many.observe(1, (k * DECAY_MS) / 1000, true);
    expect(many.estimateMs).to.be.closeTo(1 + 19 * Math.exp(-1), 1e-6);

    // Three decay periods more: within 1 ms of the samples.
    for (let k = 1; k <= 3000; k++) many.observe(1, DECAY_MS + (k * DECAY_MS) / 1000, true);
    expect(many.estimateMs).to.be.closeTo(1 + 19 * Math.exp(-4), 1e-6);
    expect(many.estimateMs - 1).to.be.lessThan(0.5);
  });

  it('lets failed calls raise the estimate but never lower it', () => {
    const e = new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0);
    e.observe(5, 0, true);
    e.observe(0.1, 60_000, false);
    expect(e.estimateMs).to.equal(5);
    e.observe(40, 60_001, false);
    expect(e.estimateMs).to.equal(40);
    // Nothing measured yet: a failure does not become the first estimate.
    const fresh = new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0);
    fresh.observe(0.1, 1, false);
    expect(Number.isNaN(fresh.estimateMs)).to.equal(true);
    expect(fresh.hasSample).to.equal(false);
  });

  it('starts from its prior, which the first real sample replaces outright', () => {
    const e = new PeakEwmaEstimate(DECAY_MS, 4, 0);
    expect(e.estimateMs).to.equal(4);
    expect(e.hasSample).to.equal(false);
    e.observe(0.5, 1, true);
    expect(e.estimateMs).to.equal(0.5);
    expect(e.hasSample).to.equal(true);
    expect(Number.isNaN(new PeakEwmaEstimate(DECAY_MS, 0, 0).estimateMs)).to.equal(true);
  });

  it('ignores negative and non-finite samples', () => {
    const e = new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0);
    e.observe(2, 0, true);
    for (const bad of [-1, Number.NaN, Infinity]) e.observe(bad, 100, true);
    expect(e.estimateMs).to.equal(2);
  });
});

describe('LatencyTracker (etcd_peak_ewma per-call timing)', () => {
  it('measures onCallStarted → onCallEnded, runs the accounting hooks, and reuses its hook pairs', () => {
    let clock = 0;
    const tracker = new LatencyTracker(new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0), () => clock, code => DEFAULT_FAILURE_CODES.has(code));
    const calls: string[] = [];
    const hooks = tracker.timeCall(() => calls.push('started'), code => calls.push(`ended ${code}`));
    clock = 100; // time between pick and start does not count
    hooks.onCallStarted();
    clock = 103.5;
    hooks.onCallEnded(status.OK);
    expect(calls).to.deep.equal(['started', `ended ${status.OK}`]);
    expect(tracker.estimate.estimateMs).to.equal(3.5);
    expect(tracker.pooled).to.equal(1);
    const again = tracker.timeCall(() => {}, () => {});
    expect(again).to.equal(hooks);
    expect(tracker.pooled).to.equal(0);
    // A second run of a hook (never done by grpc-js) is ignored, not counted twice.
    again.onCallStarted();
    again.onCallEnded(status.OK);
    again.onCallEnded(status.OK);
    expect(tracker.pooled).to.equal(1);
  });

  it('counts fast failures and cancellations only upwards', () => {
    let clock = 0;
    const tracker = new LatencyTracker(new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0), () => clock, code => DEFAULT_FAILURE_CODES.has(code));
    const call = (latencyMs: number, code: status): void => {
      const hooks = tracker.timeCall(() => {}, () => {});
      hooks.onCallStarted();
      clock += latencyMs;
      hooks.onCallEnded(code);
      clock += 1000;
    };
    call(10, status.OK);
    for (const code of [status.UNAVAILABLE, status.CANCELLED, status.INTERNAL]) call(0.05, code);
    expect(tracker.estimate.estimateMs).to.equal(10);
    // An application error is a real answer: it counts as a sample.
    call(2, status.NOT_FOUND);
    expect(tracker.estimate.estimateMs).to.be.lessThan(10);
  });
});
