import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { DEFAULT_FAILURE_CODES } from '../../../src/balancer/pool/call-load';
import { PeakEwmaEstimate, RISE_RATIO } from '../../../src/balancer/schedulers/peak-ewma-estimate';
import { LatencyTracker } from '../../../src/balancer/schedulers/peak-ewma-latency-tracker';

const DECAY_MS = 10_000;

describe('PeakEwmaEstimate (etcd_peak_ewma)', () => {
  it('rises towards a slower sample with time constant decayMs / 4: almost at once after a quiet gap, a little per sample of a steady stream', () => {
    const e = new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0);
    e.observe(1, 10, true);
    expect(e.estimateMs).to.equal(1);
    // 1 ms after the previous sample: weight 1 - e^(-1 / 2500).
    e.observe(25, 11, true);
    expect(e.estimateMs).to.be.closeTo(1 + 24 * (1 - Math.exp(-1 / (DECAY_MS / RISE_RATIO))), 1e-9);
    // A whole rise time constant later, one sample takes it 63 % of the way; four, 98 %.
    const sparse = new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0);
    sparse.observe(1, 0, true);
    sparse.observe(21, DECAY_MS / RISE_RATIO, true);
    expect(sparse.estimateMs).to.be.closeTo(1 + 20 * (1 - Math.exp(-1)), 1e-9);
    sparse.observe(21, DECAY_MS / RISE_RATIO + DECAY_MS, true);
    expect(sparse.estimateMs).to.be.greaterThan(20.6);
  });

  it('shrugs off noise common to all endpoints: replies delayed together weigh what one sample after the gap weighs', () => {
    const decayMs = 500;
    const e = new PeakEwmaEstimate(decayMs, Number.NaN, 0);
    // 1 ms replies, one every 2 ms, for 2 s.
    let t = 0;
    for (; t < 2000; t += 2) e.observe(1, t, true);
    // The client stalls 30 ms: the 15 replies due meanwhile are handled in one burst, each 1-30 ms late.
    for (let k = 0; k < 15; k++) e.observe(1 + 30 - 2 * k, t + 30, true);
    // The gap of 30 ms weighs 1 - e^(-30 / 125) ≈ 21 %: the estimate stays far below a +20 ms replica's 21 ms.
    expect(e.estimateMs).to.be.lessThan(8);
    // And two decay periods of normal replies later it is back within 1.5 ms.
    for (t += 32; t < 3030; t += 2) e.observe(1, t, true);
    expect(e.estimateMs).to.be.lessThan(2.5);
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
    // A slow failure raises it (with the rise time constant: here after a long gap, fully).
    e.observe(40, 120_000, false);
    expect(e.estimateMs).to.be.closeTo(40, 1e-6);
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
  it('measures from the pick (its clock reading, no second one at start) to onCallEnded, runs the accounting hooks, and reuses its hook pairs', () => {
    let clock = 0;
    const tracker = new LatencyTracker(new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0), () => clock, code => DEFAULT_FAILURE_CODES.has(code));
    const calls: string[] = [];
    const hooks = tracker.timeCall(() => calls.push('started'), code => calls.push(`ended ${code}`), 100);
    clock = 100.25; // grpc-js starts the call a microtask after the pick; the clock is not read again
    hooks.onCallStarted();
    clock = 103.5;
    hooks.onCallEnded(status.OK);
    expect(calls).to.deep.equal(['started', `ended ${status.OK}`]);
    expect(tracker.estimate.estimateMs).to.equal(3.5);
    expect(tracker.pooled).to.equal(1);
    const again = tracker.timeCall(() => {}, () => {}, clock);
    expect(again).to.equal(hooks);
    expect(tracker.pooled).to.equal(0);
    // A second run of a hook (never done by grpc-js) is ignored, not counted twice.
    again.onCallStarted();
    again.onCallEnded(status.OK);
    again.onCallEnded(status.OK);
    expect(tracker.pooled).to.equal(1);
  });

  it('knows when its oldest call in flight started, whatever order calls end in; a probe\'s faster answer replaces the estimate', () => {
    let clock = 0;
    const tracker = new LatencyTracker(new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0), () => clock, code => DEFAULT_FAILURE_CODES.has(code));
    expect(Number.isNaN(tracker.oldestStartedMs())).to.equal(true);
    const started = [0, 1, 2, 3].map(k => {
      clock = 10 * (k + 1);
      const hooks = tracker.timeCall(() => {}, () => {}, clock);
      hooks.onCallStarted();
      return hooks;
    });
    expect(tracker.oldestStartedMs()).to.equal(10);
    clock = 50;
    started[1].onCallEnded(status.OK); // from the middle
    expect(tracker.oldestStartedMs()).to.equal(10);
    started[0].onCallEnded(status.OK); // the head
    expect(tracker.oldestStartedMs()).to.equal(30);
    started[3].onCallEnded(status.OK); // the tail
    started[2].onCallEnded(status.CANCELLED);
    expect(Number.isNaN(tracker.oldestStartedMs())).to.equal(true);
    // Reused pairs link again.
    clock = 60;
    const reused = tracker.timeCall(() => {}, () => {}, clock);
    reused.onCallStarted();
    expect(tracker.oldestStartedMs()).to.equal(60);
    reused.onCallEnded(status.OK);

    // Estimate now 40-ish (slow answers); a probe answering in 1 ms replaces it, a normal call would only pull it down.
    const before = tracker.estimate.estimateMs;
    expect(before).to.be.greaterThan(10);
    clock = 100;
    const probe = tracker.timeCall(() => {}, () => {}, clock, true);
    probe.onCallStarted();
    clock = 101;
    probe.onCallEnded(status.OK);
    expect(tracker.estimate.estimateMs).to.equal(1);
  });

  it('counts fast failures and cancellations only upwards', () => {
    let clock = 0;
    const tracker = new LatencyTracker(new PeakEwmaEstimate(DECAY_MS, Number.NaN, 0), () => clock, code => DEFAULT_FAILURE_CODES.has(code));
    const call = (latencyMs: number, code: status): void => {
      const hooks = tracker.timeCall(() => {}, () => {}, clock);
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
