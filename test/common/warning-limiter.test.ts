import { expect } from 'chai';
import { WarningLimiter } from '../../src/common/warning-limiter';

describe('WarningLimiter', function () {
  it('prints at most `burst` lines per interval and then one summary line', function () {
    const lines: string[] = [];
    let now = 1_000;
    const limiter = new WarningLimiter('comp', { burst: 3, intervalMs: 1000, sink: l => lines.push(l), now: () => now });
    try {
      for (let i = 0; i < 10_000; i++) limiter.warn(`bad ${i}`);
      expect(lines).to.deep.equal(['comp: bad 0', 'comp: bad 1', 'comp: bad 2']);
      now += 1000;
      limiter.warn('later');
      expect(lines.slice(3)).to.deep.equal(['comp: 9997 more warning(s) suppressed in the last 1 s', 'comp: later']);
    } finally {
      limiter.close();
    }
    expect(lines).to.have.length(5);
  });

  it('close() reports what was held back', function () {
    const lines: string[] = [];
    const limiter = new WarningLimiter('comp', { burst: 1, sink: l => lines.push(l) });
    limiter.warn('a');
    limiter.warn('b');
    limiter.close();
    expect(lines).to.deep.equal(['comp: a', 'comp: 1 more warning(s) suppressed in the last 60 s']);
  });
});
