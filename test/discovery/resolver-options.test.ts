import { expect } from 'chai';
import { DEFAULT_RESOLVER_OPTIONS, resolveResolverOptions } from '../../src/discovery/resolver-options';
import { resyncBackoff } from '../../src/discovery/discovery-watch';

describe('resolver options', function () {
  it('merges over frozen defaults with ??, so 0 stays 0', function () {
    expect(Object.isFrozen(DEFAULT_RESOLVER_OPTIONS)).to.equal(true);
    expect(resolveResolverOptions()).to.deep.equal(DEFAULT_RESOLVER_OPTIONS);
    expect(resolveResolverOptions({ coalesceWindowMs: 0, keepaliveTimeMs: 0 })).to.include({ coalesceWindowMs: 0, keepaliveTimeMs: 0, pageSize: 1000 });
  });

  it('rejects bad values naming the field', function () {
    expect(() => resolveResolverOptions({ pageSize: 0 })).to.throw(/'pageSize' must be an integer/);
    expect(() => resolveResolverOptions({ coalesceWindowMs: -1 })).to.throw(/'coalesceWindowMs'/);
    expect(() => resolveResolverOptions({ initialBackoffMs: 1.5 })).to.throw(/'initialBackoffMs'/);
    expect(() => resolveResolverOptions({ initialBackoffMs: 900, maxBackoffMs: 800 })).to.throw(/'maxBackoffMs' \(800\) must be ≥/);
    expect(() => resolveResolverOptions({ keepaliveTimeMs: 1000 })).to.throw(/'keepaliveTimeMs' must be 0 \(off\) or ≥ 5000/);
  });

  it('retry delays grow exponentially to the cap, minus up to 20 % jitter', function () {
    const o = resolveResolverOptions({ initialBackoffMs: 100, maxBackoffMs: 500 });
    const none = (): number => 0;
    const backoff = resyncBackoff(o, none);
    expect(Array.from({ length: 6 }, () => backoff.next())).to.deep.equal([100, 200, 400, 500, 500, 500]);
    expect(resyncBackoff(o, () => 0.5).next()).to.equal(90);
    const worst = resyncBackoff(o, () => 0.999999);
    for (let i = 0; i < 5; i++) worst.next();
    expect(worst.next()).to.equal(400);
  });
});
