import { expect } from 'chai';
import { DEFAULT_RESOLVER_OPTIONS, resolveResolverOptions } from '../../src/discovery/resolver-options';
import { resyncDelayMs } from '../../src/backends/etcd/service-watch';

describe('etcd resolver options', function () {
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
    expect([0, 1, 2, 3, 10, 1000].map(a => resyncDelayMs(a, o, none))).to.deep.equal([100, 200, 400, 500, 500, 500]);
    expect(resyncDelayMs(0, o, () => 0.5)).to.equal(90);
    expect(resyncDelayMs(5, o, () => 0.999999)).to.equal(400);
  });
});
