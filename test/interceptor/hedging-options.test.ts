import { expect } from 'chai';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { DEFAULT_HEDGING_OPTIONS } from '../../src/interceptor/hedging-options';
import { resolveRetryOptions, type RetryOptions } from '../../src/interceptor/retry-options';

const idempotent = (): boolean => true;

describe('hedging options', () => {
  it('off by default; hedging: {} is the adaptive delay, 2 copies, ratio 0.1', () => {
    expect(resolveRetryOptions().hedging).to.equal(undefined);
    const h = resolveRetryOptions({ hedging: {}, isIdempotent: idempotent }).hedging!;
    expect(h).to.deep.equal({ delayMs: undefined, maxAttempts: 2, maxHedgeRatio: 0.1, maxHedgeTokens: 10 });
    expect(Object.isFrozen(h)).to.equal(true);
    expect(Object.isFrozen(DEFAULT_HEDGING_OPTIONS)).to.equal(true);
  });

  it('merges with ?? so delayMs 0 (every copy at once) is a real value', () => {
    expect(resolveRetryOptions({ hedging: { delayMs: 0 }, isIdempotent: idempotent }).hedging?.delayMs).to.equal(0);
  });

  const bad: [RetryOptions, RegExp][] = [
    [{ hedging: { delayMs: -1 } }, /hedging\.delayMs must be a finite number ≥ 0 \(omit it for the adaptive delay\), got -1/],
    [{ hedging: { delayMs: NaN } }, /hedging\.delayMs .*got NaN/],
    [{ hedging: { maxAttempts: 1 } }, /hedging\.maxAttempts must be an integer 2\.\.5.*got 1/],
    [{ hedging: { maxAttempts: 6 } }, /hedging\.maxAttempts .*got 6/],
    [{ hedging: { maxAttempts: 2.5 } }, /hedging\.maxAttempts .*got 2\.5/],
    [{ hedging: { maxHedgeRatio: 0 } }, /hedging\.maxHedgeRatio must be a finite number > 0, got 0/],
    [{ hedging: { maxHedgeRatio: Infinity } }, /hedging\.maxHedgeRatio .*got Infinity/],
    [{ hedging: { delay: 5 } as never }, /unknown option 'hedging\.delay' \(known: delayMs, maxAttempts, maxHedgeRatio\), got 5/],
    [{ hedging: 5 as never }, /hedging must be an object \(omit it to turn hedging off\), got 5/],
    [{ hedging: null as never }, /hedging must be an object.*got null/],
    [{ hedging: {}, maxAttempts: 1 }, /maxAttempts must be ≥ 2 with hedging.*got 1/],
    [{ onHedge: 'log' as never }, /onHedge must be a function, got "log"/],
  ];
  for (const [options, message] of bad) {
    it(`rejects ${JSON.stringify(options, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))} naming the option and value`, () => {
      const withIdempotent = { isIdempotent: idempotent, ...options };
      expect(() => createRetryInterceptor(withIdempotent)).to.throw(TypeError, /^grpc-etcd-lb retry interceptor: /);
      expect(() => resolveRetryOptions(withIdempotent)).to.throw(message);
    });
  }

  it('rejects hedging without isIdempotent: only the methods it names are hedged', () => {
    expect(() => resolveRetryOptions({ hedging: {} })).to.throw(TypeError, /hedging needs isIdempotent/);
  });
});
