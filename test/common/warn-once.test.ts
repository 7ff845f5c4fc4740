import { expect } from 'chai';
import { WarnOnce } from '../../src/common/warn-once';

describe('WarnOnce', () => {
  it('prints a key once, and starts over past its bound instead of growing', () => {
    const lines: string[] = [];
    const once = new WarnOnce(text => lines.push(text), 2);
    expect(once.warn('a')).to.equal(true);
    expect(once.warn('a')).to.equal(false);
    expect(once.warn('other text, same key', 'a')).to.equal(false);
    once.warn('b');
    once.warn('c'); // third key: the set starts over
    once.warn('a');
    expect(lines).to.deep.equal(['a', 'b', 'c', 'a']);
  });

  it('forget(key) lets a key print again', () => {
    const lines: string[] = [];
    const once = new WarnOnce(text => lines.push(text));
    once.warn('down', 'k');
    once.warn('down', 'k');
    once.forget('k');
    once.warn('down again', 'k');
    expect(lines).to.deep.equal(['down', 'down again']);
  });
});
