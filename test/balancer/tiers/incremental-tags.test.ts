/**
 * Property test of tag routing's incremental state: seeded random flips, tag,
 * weight and priority changes, adds and removes; after every step each active
 * tier's tags hold exactly the usable endpoints of that tag (as a rebuild
 * would), and `forCall` follows the rules of tag-split.ts.
 */
import { expect } from 'chai';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { EndpointState } from '../../../src/balancer/pool/endpoint-state';
import { WeightedRoundRobinScheduler } from '../../../src/balancer/schedulers/weighted-round-robin-scheduler';
import { type Tier } from '../../../src/balancer/tiers/tier';
import { TierSet } from '../../../src/balancer/tiers/tier-set';
import { seededRandom } from '../../support/wait';

const loadOptions = resolveCallLoadOptions({ nowMs: () => 0 });
const TAGS = ['', '', 'canary', 'blue'];

function endpoint(n: number, weight: number, priority: number, tag: string): EndpointState {
  const address = `127.0.${n >> 8}.${n & 255}:80`;
  const state = new EndpointState(address, [address], new CallLoad(loadOptions));
  state.attributes = { weight, priority, metadata: tag === '' ? {} : { tag } };
  return state;
}

/** Members of each tag's tier under a group, sorted. */
function byTag(group: Tier): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const tag of ['', 'canary', 'blue']) {
    const leaf = group.tags!.leafFor(tag);
    if (leaf.size > 0) result[tag] = leaf.endpoints.map(e => e.key ?? '').sort();
  }
  return result;
}

function rebuilt(all: readonly EndpointState[], priority: number, draining: boolean): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const e of all) {
    if (!e.usable || e.priority !== priority || (e.weight === 0) !== draining) continue;
    (result[e.tag] ??= []).push(e.key);
  }
  for (const tag of Object.keys(result)) result[tag].sort();
  return result;
}

describe('incremental tag tiers: random event sequences equal a rebuild after every step', () => {
  it('3,000 seeded steps over ~50 endpoints, 3 tiers, 3 tags', () => {
    const random = seededRandom(27);
    const int = (n: number): number => Math.floor(random() * n);
    const tiers = new TierSet(() => new WeightedRoundRobinScheduler([], seededRandom(1)), undefined, true);
    const all: EndpointState[] = [];
    let serial = 0;
    for (let i = 0; i < 50; i++) all.push(endpoint(serial++, 1 + int(3), int(3), TAGS[int(TAGS.length)]));
    const counts = { flip: 0, tag: 0, weight: 0, priority: 0, add: 0, remove: 0 };
    for (let step = 0; step < 3000; step++) {
      const op = int(10);
      const e = all[int(all.length)];
      if (op < 4) {
        e.usable = !e.usable;
        counts.flip++;
      } else if (op < 6) {
        const tag = TAGS[int(TAGS.length)];
        e.attributes = { ...e.attributes, metadata: tag === '' ? {} : { tag } };
        counts.tag++;
      } else if (op < 7) {
        e.attributes = { ...e.attributes, weight: int(6) === 0 ? 0 : 1 + int(3) };
        counts.weight++;
      } else if (op < 8) {
        e.attributes = { ...e.attributes, priority: int(3) };
        counts.priority++;
      } else if (op < 9 || all.length < 30) {
        const added = endpoint(serial++, 1 + int(3), int(3), TAGS[int(TAGS.length)]);
        added.usable = int(2) === 0;
        all.push(added);
        tiers.place(added, added.usable);
        counts.add++;
        continue;
      } else {
        tiers.place(e, false);
        all.splice(all.indexOf(e), 1);
        counts.remove++;
        continue;
      }
      tiers.place(e, e.usable);
      for (const group of tiers.active) {
        expect(byTag(group), `step ${step}, priority ${group.priority}`).to.deep.equal(rebuilt(all, group.priority, group.draining));
        expect(group.size).to.equal(Object.values(byTag(group)).reduce((n, m) => n + m.length, 0));
        const sizes = byTag(group);
        const has = (tag: string): boolean => (sizes[tag]?.length ?? 0) > 0;
        // Tagged: its tag, else untagged (or nothing with force / without untagged ones).
        expect(group.tags!.forCall('canary', true)?.endpoints.every(m => m.tag === 'canary') ?? !has('canary')).to.equal(true);
        const fallback = group.tags!.forCall('canary', false);
        if (has('canary')) expect(fallback?.endpoints.every(m => m.tag === 'canary')).to.equal(true);
        else if (has('')) expect(fallback?.endpoints.every(m => m.tag === '')).to.equal(true);
        else expect(fallback).to.equal(undefined);
        // Untagged: untagged, else any non-empty tag.
        const plain = group.tags!.forCall('', false);
        expect(plain?.size ?? 0).to.be.greaterThan(0);
        if (has('')) expect(plain?.endpoints.every(m => m.tag === '')).to.equal(true);
      }
    }
    expect(Object.values(counts).every(c => c > 50), JSON.stringify(counts)).to.equal(true);
  });
});
