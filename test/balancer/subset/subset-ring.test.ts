import { expect } from 'chai';
import { SubsetRing } from '../../../src/balancer/subset/subset-ring';
import { xxhash64 } from '../../../src/balancer/subset/xxhash64';

describe('subset: XXH64 and the hash-ordered ring', () => {
  it('XXH64 matches the reference vectors (short input, 4/8-byte lanes, 32-byte stripes, seed)', () => {
    expect(xxhash64('', 0n).toString(16)).to.equal('ef46db3751d8e999');
    expect(xxhash64('a', 0n).toString(16)).to.equal('d24ec4f1a98c6e5b');
    expect(xxhash64('abc', 0n).toString(16)).to.equal('44bc2cf5ad770999');
    expect(xxhash64('xxhash', 0n).toString(16)).to.equal('32dd38952c4bc720');
    expect(xxhash64('xxhash', 20141025n).toString(16)).to.equal('b559b98d844e0635');
    expect(xxhash64('Nobody inspects the spammish repetition', 0n).toString(16)).to.equal('fbcea83c8a378bf1');
  });

  it('keeps entries in (hash, address) order across inserts and deletes, in any insertion order', () => {
    const addresses = Array.from({ length: 200 }, (_v, i) => `10.0.${i >> 8}.${i & 255}:50051`);
    const expected = [...addresses].sort((a, b) => {
      const ha = xxhash64(a, 7n) >> 11n;
      const hb = xxhash64(b, 7n) >> 11n;
      return ha < hb ? -1 : ha > hb ? 1 : a < b ? -1 : 1;
    });
    const forward = new SubsetRing<string>(7n);
    const backward = new SubsetRing<string>(7n);
    for (const a of addresses) forward.set(a, a);
    for (const a of [...addresses].reverse()) backward.set(a, a);
    const list = (ring: SubsetRing<string>): string[] => Array.from({ length: ring.size }, (_v, i) => ring.at(i));
    expect(list(forward)).to.deep.equal(expected);
    expect(list(backward)).to.deep.equal(expected);
    for (const a of addresses.filter((_a, i) => i % 3 === 0)) expect(forward.delete(a)).to.equal(true);
    expect(forward.delete('nope')).to.equal(false);
    expect(list(forward)).to.deep.equal(expected.filter(a => addresses.indexOf(a) % 3 !== 0));
    forward.set(addresses[1], 'replaced');
    expect(forward.get(addresses[1])).to.equal('replaced');
    expect(forward.size).to.equal(133);
  });
});
