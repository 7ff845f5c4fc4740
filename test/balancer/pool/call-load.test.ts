import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';

function fakeClock(): { nowMs: () => number; advance(ms: number): void } {
  let now = 1000;
  return { nowMs: () => now, advance(ms) { now += ms; } };
}

describe('CallLoad (outstanding calls and failure penalty)', () => {
  it('counts a pick as outstanding from pick to end, and exactly once', () => {
    const clock = fakeClock();
    const load = new CallLoad(resolveCallLoadOptions({ nowMs: clock.nowMs }));
    const started = load.recordPick(clock.nowMs());
    expect(load.outstanding(clock.nowMs())).to.equal(1);
    started();
    expect(load.outstanding(clock.nowMs())).to.equal(1);
    expect(load.active).to.equal(1);
    load.onCallEnded(status.OK);
    expect(load.outstanding(clock.nowMs())).to.equal(0);
  });

  it('forgets picks that never start after one to two expiry periods, and never goes negative', () => {
    const clock = fakeClock();
    const load = new CallLoad(resolveCallLoadOptions({ nowMs: clock.nowMs, pendingPickExpiryMs: 100 }));
    const lateStart = load.recordPick(clock.nowMs());
    load.recordPick(clock.nowMs());
    clock.advance(60);
    load.recordPick(clock.nowMs());
    expect(load.pending(clock.nowMs())).to.equal(3);
    clock.advance(60); // first bucket rolls to "previous": still counted
    expect(load.pending(clock.nowMs())).to.equal(3);
    clock.advance(100); // now older than two periods
    expect(load.pending(clock.nowMs())).to.equal(0);
    lateStart(); // a pick that starts after it expired counts as active, not as -1 pending
    expect(load.pending(clock.nowMs())).to.equal(0);
    expect(load.active).to.equal(1);
    load.onCallEnded(status.CANCELLED);
    expect(load.outstanding(clock.nowMs())).to.equal(0);
  });

  it('adds a penalty per failed call that halves every half-life and drops to 0 below the floor', () => {
    const clock = fakeClock();
    const load = new CallLoad(resolveCallLoadOptions({ nowMs: clock.nowMs, failurePenaltyHalfLifeMs: 1000 }));
    for (const code of [status.UNAVAILABLE, status.INTERNAL]) {
      load.recordPick(clock.nowMs())();
      load.onCallEnded(code);
    }
    for (const code of [status.OK, status.NOT_FOUND, status.CANCELLED]) {
      load.recordPick(clock.nowMs())();
      load.onCallEnded(code);
    }
    expect(load.failurePenalty(clock.nowMs())).to.be.closeTo(2, 1e-9);
    clock.advance(1000);
    expect(load.failurePenalty(clock.nowMs())).to.be.closeTo(1, 1e-9);
    expect(load.score(clock.nowMs())).to.be.closeTo(1, 1e-9);
    clock.advance(5000);
    expect(load.failurePenalty(clock.nowMs())).to.equal(0);
    expect(load.outstanding(clock.nowMs())).to.equal(0);
  });

  it('rejects bad options naming the field', () => {
    expect(() => resolveCallLoadOptions({ pendingPickExpiryMs: 0 })).to.throw(/CallLoad: pendingPickExpiryMs must be a positive number, got 0/);
    expect(() => resolveCallLoadOptions({ failurePenalty: -1 })).to.throw(/failurePenalty/);
  });
});
