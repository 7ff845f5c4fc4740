import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { buildRing, lowerBound, pointCounts, ringHash, ringLookup } from '../../../src/balancer/ring/hash-ring';
import { callKey, RingHashScheduler } from '../../../src/balancer/ring/ring-hash-scheduler';
import { seededRandom } from '../../support/wait';

const NOW = 0;
const loadOptions = resolveCallLoadOptions({ nowMs: () => NOW });

function member(i: number, weight = 1): { address: string; weight: number; addresses: string[]; load: CallLoad } {
  const address = `10.0.0.${i}:50051`;
  return { address, weight, addresses: [address], load: new CallLoad(loadOptions) };
}

function withKey(key: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (key !== undefined) metadata.set('x-key', key);
  return metadata;
}

function scheduler(members: ReturnType<typeof member>[], loadBound?: number): RingHashScheduler {
  const s = new RingHashScheduler({ hashHeader: 'x-key', minRingSize: 1024, maxRingSize: 8_388_608, loadBound, random: seededRandom(7) });
  for (const m of members) s.add(m, m.weight);
  return s;
}

describe('hash ring (etcd_ring_hash, gRFC A42 sizing)', () => {
  it('hashes with XXH64 (reference vectors: XXH64("") = ef46db3751d8e999, XXH64("a") = d24ec4f1a98c6e5b), top 53 bits', () => {
    expect(ringHash('')).to.equal(Number(0xef46db3751d8e999n >> 11n));
    expect(ringHash('a')).to.equal(Number(0xd24ec4f1a98c6e5bn >> 11n));
  });

  it('sizes the ring as gRFC A42 (lightest endpoint ⌈minShare × minRingSize⌉ points, rounded up to a power of two), capped by maxRingSize, shared by weight', () => {
    // minShare 1/3: ⌈341.33⌉ = 342 → 512 points each.
    expect(pointCounts([1, 1, 1], 1024, 8_388_608)).to.deep.equal([512, 512, 512]);
    expect(pointCounts([1, 2], 1024, 8_388_608)).to.deep.equal([512, 1024]);
    // minShare 1/101: ⌈10.14⌉ = 11 → 16; the cap wins below 1616.
    expect(pointCounts([1, 100], 1024, 8_388_608)).to.deep.equal([16, 1600]);
    expect(pointCounts([1, 100], 1024, 500)).to.deep.equal([5, 495]);
    expect(pointCounts([3, 1], 4, 100)).to.deep.equal([3, 1]);
    // 10 → 9 → 11 equal endpoints: 103, 114, 94 by A42's exact figure; 128 each here, so nobody else's points change.
    for (const n of [9, 10, 11]) expect(new Set(pointCounts(new Array<number>(n).fill(1), 1024, 8_388_608))).to.deep.equal(new Set([128]));
  });

  it('places point k of an endpoint at XXH64("<address>_<k>"), sorted, each owner with its count', () => {
    const members = [member(1), member(2, 2)];
    const ring = buildRing(members, 16, 1024);
    // minShare 1/3: ⌈5.33⌉ = 6 → 8 points for the lightest: 8 and 16.
    expect(ring.hashes.length).to.equal(24);
    const expected = [
      ...Array.from({ length: 8 }, (_, k) => [ringHash(`10.0.0.1:50051_${k}`), 0]),
      ...Array.from({ length: 16 }, (_, k) => [ringHash(`10.0.0.2:50051_${k}`), 1]),
    ].sort((a, b) => a[0] - b[0]);
    expect([...ring.hashes]).to.deep.equal(expected.map(e => e[0]));
    expect([...ring.owners]).to.deep.equal(expected.map(e => e[1]));
    for (let i = 0; i < ring.hashes.length; i++) {
      const next = ring.nextOwnerChange[i];
      expect(ring.owners[next]).to.not.equal(ring.owners[i]);
      for (let j = (i + 1) % 24; j !== next; j = (j + 1) % 24) expect(ring.owners[j]).to.equal(ring.owners[i]);
    }
    expect(lowerBound(ring.hashes, ring.hashes[5])).to.equal(5);
    expect(lowerBound(ring.hashes, ring.hashes[23] + 1)).to.equal(0);
    expect(lowerBound(ring.hashes, 0)).to.equal(0);
  });

  it('finds the same point through the radix index as by binary search (wrapping past the last point)', () => {
    const random = seededRandom(3);
    for (const size of [1, 2, 3, 10, 100]) {
      const ring = buildRing(Array.from({ length: size }, (_, i) => member(i + 1)), 64, 4096);
      const probes = [0, 2 ** 53 - 1, ...ring.hashes, ...[...ring.hashes].map(h => h + 1), ...Array.from({ length: 2000 }, () => Math.floor(random() * 2 ** 53))];
      for (const hash of probes) expect(ringLookup(ring, hash), `size ${size}, hash ${hash}`).to.equal(lowerBound(ring.hashes, hash));
    }
  });

  it('joins several header values with "," (as grpc-go); no header = no key', () => {
    const metadata = new grpc.Metadata();
    expect(callKey(metadata, 'x-key')).to.equal(undefined);
    metadata.add('x-key', 'a');
    metadata.add('x-key', 'b');
    expect(callKey(metadata, 'x-key')).to.equal('a,b');
  });

  it('is sticky, the same whatever order endpoints joined in, and moves only the keys of a removed endpoint', () => {
    const members = Array.from({ length: 10 }, (_, i) => member(i + 1));
    const a = scheduler(members);
    const b = scheduler([...members].reverse());
    const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
    const ownerA = keys.map(k => members[a.pick(undefined, NOW, withKey(k))].address);
    const ownerB = keys.map(k => [...members].reverse()[b.pick(undefined, NOW, withKey(k))].address);
    expect(ownerB).to.deep.equal(ownerA);
    expect(keys.map(k => members[a.pick(undefined, NOW, withKey(k))].address)).to.deep.equal(ownerA);
    // Remove member 3 (slot 3): the last takes its slot (swap-remove), as a tier does.
    const removed = members[3].address;
    a.remove(3);
    const after = [...members];
    after[3] = after.pop()!;
    let moved = 0;
    keys.forEach((k, i) => {
      const now = after[a.pick(undefined, NOW, withKey(k))].address;
      if (now !== ownerA[i]) {
        moved++;
        expect(ownerA[i], `key ${k} moved though its owner stayed`).to.equal(removed);
      }
    });
    expect(moved).to.equal(ownerA.filter(o => o === removed).length);
    expect(moved / keys.length).to.be.within(0.05, 0.15);
  });

  it('a retry (excluded) goes to the next distinct endpoint clockwise; no header = a random point', () => {
    const members = Array.from({ length: 5 }, (_, i) => member(i + 1));
    const s = scheduler(members);
    const ring = s.ringOf();
    const key = 'user-42';
    const start = lowerBound(ring.hashes, ringHash(key));
    const owner = ring.owners[start];
    expect(s.pick(undefined, NOW, withKey(key))).to.equal(owner);
    const excluded = new Uint8Array(5);
    excluded[owner] = 1;
    expect(s.pick(excluded, NOW, withKey(key))).to.equal(ring.owners[ring.nextOwnerChange[start]]);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(s.pick(undefined, NOW, withKey(undefined)));
    expect(seen.size).to.equal(5);
  });

  it('bounded load: the owner takes the call while within ⌈c × (m + 1) × w / W⌉, else the next one clockwise under its bound', () => {
    const members = Array.from({ length: 4 }, (_, i) => member(i + 1));
    // A new scheduler counts m exactly at its first pick (then every max(64, n) picks, and per call through observeCall).
    const fresh = (): RingHashScheduler => scheduler(members, 1.25);
    const key = 'hot';
    const owner = fresh().pick(undefined, NOW, withKey(key));
    // m = 3 in flight elsewhere, none on the owner: capacity ⌈1.25 × 4 / 4⌉ = 2: the owner takes it.
    for (const [i, m] of members.entries()) if (i !== owner) m.load.recordPick(NOW)();
    expect(fresh().pick(undefined, NOW, withKey(key))).to.equal(owner);
    // Owner at 2 (m = 5): capacity ⌈1.25 × 6 / 4⌉ = 2, 2 + 1 > 2: the walk moves on.
    members[owner].load.recordPick(NOW)();
    members[owner].load.recordPick(NOW)();
    const s = fresh();
    const ring = s.ringOf();
    const next = ring.owners[ring.nextOwnerChange[lowerBound(ring.hashes, ringHash(key))]];
    expect(s.pick(undefined, NOW, withKey(key))).to.equal(next);
    // Without a bound the owner always takes it.
    expect(scheduler(members).pick(undefined, NOW, withKey(key))).to.equal(owner);
  });

  it('bounded load keeps m per call: observeCall counts a call until its end hook runs', () => {
    const members = Array.from({ length: 2 }, (_, i) => member(i + 1));
    const s = scheduler(members, 1);
    const key = 'k';
    const owner = s.pick(undefined, NOW, withKey(key));
    let ended = 0;
    // m = 0: capacity ⌈1 × 1 / 2⌉ = 1; the call counts in m (and its own load) until it ends.
    const hooks = s.observeCall(owner, members[owner].load.recordPick(NOW), () => { ended++; });
    hooks.onCallStarted();
    // m = 1, owner at 1: capacity ⌈2 / 2⌉ = 1: full, the other one takes the next call.
    expect(s.pick(undefined, NOW, withKey(key))).to.equal(1 - owner);
    hooks.onCallEnded(0);
    members[owner].load.onCallEnded(0);
    expect(ended).to.equal(1);
    expect(s.pick(undefined, NOW, withKey(key))).to.equal(owner);
  });

  it('slow start (a new effective weight) keeps the ring; a configured weight change rebuilds it', () => {
    const members = Array.from({ length: 3 }, (_, i) => member(i + 1));
    const s = scheduler(members);
    const ring = s.ringOf();
    s.setWeight(1, 0.1);
    expect(s.ringOf()).to.equal(ring);
    members[1].weight = 3;
    s.setWeight(1, 3);
    expect(s.ringOf()).to.not.equal(ring);
    expect(s.ringOf().hashes.length).to.equal(pointCounts([1, 3, 1], 1024, 8_388_608).reduce((x, y) => x + y, 0));
  });
});
