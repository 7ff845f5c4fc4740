import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { DEFAULT_RETRY_OPTIONS, resolveRetryOptions, type RetryOptions } from '../../src/interceptor/retry-options';

describe('retry options', () => {
  it('defaults as documented: 3 attempts, UNAVAILABLE, 25/1000 ms ×2 backoff, budget 100/1, no attempt timeout', () => {
    const o = resolveRetryOptions();
    expect(o.maxAttempts).to.equal(3);
    expect(o.retryableCodeMask).to.equal(1 << status.UNAVAILABLE);
    expect([o.initialBackoffMs, o.maxBackoffMs, o.backoffMultiplier]).to.deep.equal([25, 1000, 2]);
    expect([o.maxTokens, o.tokenRatio]).to.deep.equal([100, 1]);
    expect(o.perAttemptTimeoutMs).to.equal(undefined);
    expect(o.random).to.equal(Math.random);
    expect(Object.isFrozen(DEFAULT_RETRY_OPTIONS)).to.equal(true);
    expect(Object.isFrozen(o)).to.equal(true);
  });

  it('merges with ?? so 0 is a real value', () => {
    const o = resolveRetryOptions({ initialBackoffMs: 0, maxBackoffMs: 0, retryableCodes: [status.UNAVAILABLE, status.RESOURCE_EXHAUSTED] });
    expect([o.initialBackoffMs, o.maxBackoffMs]).to.deep.equal([0, 0]);
    expect(o.retryableCodeMask).to.equal((1 << status.UNAVAILABLE) | (1 << status.RESOURCE_EXHAUSTED));
  });

  const bad: [string, unknown, RegExp][] = [
    ['maxAttempts', 0, /maxAttempts must be an integer ≥ 1.*got 0/],
    ['maxAttempts', 2.5, /maxAttempts .*got 2\.5/],
    ['maxAttempts', Infinity, /maxAttempts .*got Infinity/],
    ['retryableCodes', 'UNAVAILABLE', /retryableCodes must be an array.*"UNAVAILABLE"/],
    ['retryableCodes', [status.OK], /OK cannot be retried.*got 0/],
    ['retryableCodes', [99], /status codes 1\.\.16.*got 99/],
    ['initialBackoffMs', -1, /initialBackoffMs must be a finite number ≥ 0, got -1/],
    ['maxBackoffMs', NaN, /maxBackoffMs must be a finite number ≥ 0, got NaN/],
    ['backoffMultiplier', 0, /backoffMultiplier must be a finite number > 0, got 0/],
    ['perAttemptTimeoutMs', 0, /perAttemptTimeoutMs \(omit it to turn it off\) must be a finite number > 0, got 0/],
    ['maxTokens', 0, /maxTokens must be a finite number > 0, got 0/],
    ['tokenRatio', -0.5, /tokenRatio .*got -0\.5/],
    ['shouldRetry', true, /shouldRetry must be a function, got true/],
    ['onRetry', 'log', /onRetry must be a function, got "log"/],
    ['random', 4, /random must be a function, got 4/],
    ['maxAttempt', 3, /unknown option 'maxAttempt'/],
  ];
  for (const [key, value, message] of bad) {
    it(`rejects ${key}: ${typeof value === 'number' ? value : JSON.stringify(value)} with an error naming the component and value`, () => {
      const options = { [key]: value } as RetryOptions;
      expect(() => createRetryInterceptor(options)).to.throw(TypeError, /^grpc-etcd-lb retry interceptor: /);
      expect(() => resolveRetryOptions(options)).to.throw(message);
    });
  }

  it('rejects maxBackoffMs below initialBackoffMs', () => {
    expect(() => resolveRetryOptions({ initialBackoffMs: 500, maxBackoffMs: 100 })).to.throw(/maxBackoffMs must be ≥ initialBackoffMs \(500\), got 100/);
  });

  it('rejects a non-object', () => {
    expect(() => resolveRetryOptions(42 as unknown as RetryOptions)).to.throw(/options must be an object, got 42/);
  });
});
