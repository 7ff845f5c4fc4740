/**
 * Zone-aware routing, pure parts: Envoy's spill rule with exact figures, and
 * the zone-split tiers (membership, fleet and census changes, seeded picks,
 * retry avoidance) without a channel.
 */
import { expect } from 'chai';
import { Metadata } from '@grpc/grpc-js';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { attachSteering } from '../../../src/balancer/call-steering';
import { EndpointState } from '../../../src/balancer/pool/endpoint-state';
import { TierSet } from '../../../src/balancer/tiers/tier-set';
import { TieredPicker } from '../../../src/balancer/tiers/tiered-picker';
import { WeightedRoundRobinScheduler } from '../../../src/balancer/schedulers/weighted-round-robin-scheduler';
import { ZoneRouting } from '../../../src/balancer/tiers/zone-routing';
import { zoneShares } from '../../../src/balancer/tiers/zone-split';
import { PickResultType, type PickResult, type Picker } from '../../../src/common/grpc-experimental';
import { seededRandom } from '../../support/wait';

const NO_TRACE = Object.assign(() => {}, { enabled: false });

function shares(healthy: number[], callers: number[]): number[] {
  const out = new Float64Array(healthy.length);
  zoneShares(healthy, callers, healthy.length, out);
  return [...out].map(x => Math.round(x * 1e9) / 1e9);
}

describe('zone-aware routing: the spill rule (Envoy)', () => {
  it('all local when my zone has at least its callers\' share of the endpoints', () => {
    expect(shares([3, 3], [0.5, 0.5])).to.deep.equal([1, 0]);
    expect(shares([4, 2], [0.5, 0.5])).to.deep.equal([1, 0]);
    // Callers in a zone with no endpoints do not pull traffic out of mine.
    expect(shares([2, 2], [0.4, 0.1])).to.deep.equal([1, 0]);
  });

  it('every caller in my zone: upstream% / local% stays local (50 %), the rest spills', () => {
    expect(shares([3, 3], [1, 0])).to.deep.equal([0.5, 0.5]);
  });

  it('2 of 3 local replicas gone, callers split evenly: 50 % local, 50 % to the other zone', () => {
    expect(shares([1, 3], [0.5, 0.5])).to.deep.equal([0.5, 0.5]);
    expect(shares([1, 3], [0.6, 0.4])).to.deep.equal([0.416666667, 0.583333333]);
  });

  it('spill goes to other zones in proportion to their residual capacity, not their size', () => {
    // up = [.125, .375, .5]; local .125 / .5 = 25 %; residuals b .125, c .25.
    expect(shares([1, 3, 4], [0.5, 0.25, 0.25])).to.deep.equal([0.25, 0.25, 0.5]);
    // A zone already over-called (b) gets none of the spill.
    expect(shares([1, 1, 2], [0.5, 0.4, 0.1])).to.deep.equal([0.5, 0, 0.5]);
  });

  it('no usable endpoint in my zone: everything spills; none anywhere: all zero', () => {
    expect(shares([0, 2, 2], [0.5, 0.25, 0.25])).to.deep.equal([0, 0.5, 0.5]);
    expect(shares([0, 1, 3], [0, 0.5, 0.5])).to.deep.equal([0, 0, 1]);
    expect(shares([0, 0], [0.5, 0.5])).to.deep.equal([0, 0]);
  });
});

describe('zone-aware routing: zone-split tiers', () => {
  const loadOptions = resolveCallLoadOptions({ nowMs: () => 0 });
  let zoning: ZoneRouting;
  let tiers: TierSet;
  let all: EndpointState[];

  function endpoint(n: number, zone: string | undefined, priority = 0): EndpointState {
    const address = `127.0.0.${n}:80`;
    const state = new EndpointState(address, [address], new CallLoad(loadOptions));
    state.attributes = { weight: 1, priority, metadata: zone === undefined ? {} : { zone } };
    zoning.track(state);
    all.push(state);
    return state;
  }

  function setUsable(e: EndpointState, usable: boolean): void {
    e.usable = usable;
    tiers.place(e, usable);
  }

  /** Picks per zone over `n` picks. */
  function pickZones(n: number, random: () => number): Map<string, number> {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const leaf = tiers.active[0].zones!.choose(random);
      const e = leaf.endpoints[leaf.scheduler.pick(undefined, 0)];
      counts.set(e.zone, (counts.get(e.zone) ?? 0) + 1);
    }
    return counts;
  }

  beforeEach(() => {
    zoning = new ZoneRouting('a', NO_TRACE);
    tiers = new TierSet(() => new WeightedRoundRobinScheduler([], seededRandom(3)), zoning);
    all = [];
  });

  it('callers assumed to spread like all endpoints: healthy zones stay local; a zone losing replicas spills what it lost', () => {
    const a = [1, 2, 3].map(n => endpoint(n, 'a'));
    const b = [4, 5, 6].map(n => endpoint(n, 'b'));
    for (const e of [...a, ...b]) setUsable(e, true);
    expect(tiers.active).to.have.length(1);
    expect([...tiers.active[0].zones!.shares()]).to.deep.equal([['a', 1], ['b', 0]]);
    expect(pickZones(1000, seededRandom(1))).to.deep.equal(new Map([['a', 1000]]));
    setUsable(a[0], false);
    setUsable(a[1], false);
    // Census (all endpoints, any state) says 50 % of callers are in a; 1 of 4 usable endpoints is.
    const split = tiers.active[0].zones!;
    expect(split.shares().get('a')).to.equal(0.5);
    const counts = pickZones(10_000, seededRandom(2));
    expect(counts.get('a')! / 10_000).to.be.closeTo(0.5, 0.02);
    // The lone survivor takes a's local half; b's three share the rest.
    expect(a[2].tier!.size).to.equal(1);
  });

  it('the fleet view replaces the census when it arrives, and shares follow it', () => {
    for (const [n, zone] of [[1, 'a'], [2, 'a'], [3, 'a'], [4, 'b'], [5, 'b'], [6, 'b']] as const) setUsable(endpoint(n, zone), true);
    zoning.setFleet({ selfIndex: 0, clientCount: 10, zoneCounts: new Map([['a', 10]]) });
    expect(tiers.active[0].zones!.shares().get('a')).to.equal(0.5);
    zoning.setFleet({ selfIndex: 0, clientCount: 10, zoneCounts: new Map([['a', 5], ['b', 5]]) });
    expect(tiers.active[0].zones!.shares().get('a')).to.equal(1);
    // An empty view (nobody announced yet) falls back to the census.
    zoning.setFleet({ selfIndex: undefined, clientCount: 0, zoneCounts: new Map() });
    expect(zoning.fleetKnown).to.equal(false);
    expect(tiers.active[0].zones!.shares().get('a')).to.equal(1);
  });

  it('endpoints without a zone are another zone; priorities come first; a zone change moves the endpoint', () => {
    const local = endpoint(1, 'a');
    const anonymous = endpoint(2, undefined);
    const standby = endpoint(3, 'a', 1);
    for (const e of [local, anonymous, standby]) setUsable(e, true);
    expect(tiers.active.map(t => t.priority)).to.deep.equal([0, 1]);
    expect(anonymous.tier!.zone).to.equal('');
    expect(local.tier!.rank).to.equal(0);
    expect(standby.tier!.rank).to.equal(1);
    setUsable(local, false);
    // Primary tier keeps the traffic (the zone-less endpoint), the standby in my zone does not take it.
    expect(tiers.active[0].priority).to.equal(0);
    expect(tiers.active[0].zones!.shares().get('')).to.equal(1);
    setUsable(local, true);
    zoning.untrack(anonymous);
    anonymous.attributes = { weight: 1, priority: 0, metadata: { zone: 'a' } };
    zoning.track(anonymous);
    tiers.place(anonymous, true);
    expect(anonymous.tier).to.equal(local.tier);
    expect(tiers.active[0].zones!.leaves.map(l => `${l.zone}:${l.size}`)).to.deep.equal(['a:2', ':0']);
    tiers.active[0].zones!.shares();
    expect(tiers.active[0].zones!.leaves).to.have.length(1); // the empty zone's tier went at the recompute
  });

  it('a retry avoids the tried endpoints across zones before failing over to the next tier', () => {
    const a1 = endpoint(1, 'a');
    const b1 = endpoint(2, 'b');
    const standby = endpoint(3, 'a', 1);
    for (const e of all) setUsable(e, true);
    const byAddress = new Map(all.map(e => [e.addresses[0], e]));
    const completed: PickResult = { pickResultType: PickResultType.COMPLETE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null };
    for (const e of all) e.child = { getPicker: (): Picker => ({ pick: () => ({ ...completed }) }), startConnecting() {}, exitIdle() {}, destroy() {} };
    const picker = new TieredPicker(tiers, address => byAddress.get(address), false, () => 0, false, seededRandom(5));
    const pickAfter = (tried: EndpointState[]): string => {
      const metadata = new Metadata();
      const steering = attachSteering(metadata);
      for (const e of tried) steering.tried.add(e.addresses[0]);
      picker.pick({ metadata, extraPickInfo: {} });
      return steering.lastPicked!;
    };
    for (let i = 0; i < 20; i++) expect(pickAfter([])).to.equal(a1.addresses[0]);
    for (let i = 0; i < 20; i++) expect(pickAfter([a1])).to.equal(b1.addresses[0]);
    expect(pickAfter([a1, b1])).to.equal(standby.addresses[0]);
    // Flags are cleared after each pick.
    expect(tiers.active[0].excludedCount).to.equal(0);
    expect(a1.tier!.excludedCount).to.equal(0);
  });
});

describe('zone-aware routing: random event sequences keep the zone-split tiers equal to a rebuild', () => {
  it('3,000 seeded steps over ~40 endpoints in 3 priorities and 3 zones (+ none)', () => {
    const loadOptions = resolveCallLoadOptions({ nowMs: () => 0 });
    const random = seededRandom(77);
    const int = (n: number): number => Math.floor(random() * n);
    const zones = ['a', 'b', 'c', undefined];
    const zoning = new ZoneRouting('a', NO_TRACE);
    const tiers = new TierSet(() => new WeightedRoundRobinScheduler([], seededRandom(9)), zoning);
    const all: EndpointState[] = [];
    let serial = 0;
    const make = (): EndpointState => {
      const address = `127.1.${serial >> 8}.${serial++ & 255}:80`;
      const e = new EndpointState(address, [address], new CallLoad(loadOptions));
      e.attributes = { weight: 1 + int(4), priority: int(3), metadata: { zone: zones[int(4)] } };
      zoning.track(e);
      return e;
    };
    for (let i = 0; i < 40; i++) all.push(make());
    for (let step = 0; step < 3000; step++) {
      const op = int(10);
      const e = all[int(all.length)];
      if (op < 4) {
        e.usable = !e.usable;
      } else if (op < 6) {
        e.attributes = { ...e.attributes, metadata: { zone: zones[int(4)] } };
      } else if (op < 7) {
        e.attributes = { ...e.attributes, priority: int(3), weight: int(6) };
      } else if (op < 8 || all.length < 25) {
        const added = make();
        added.usable = int(2) === 0;
        all.push(added);
        tiers.place(added, added.usable);
        continue;
      } else {
        tiers.place(e, false);
        zoning.untrack(e);
        all.splice(all.indexOf(e), 1);
        continue;
      }
      zoning.track(e);
      tiers.place(e, e.usable);
      // Expected: the lowest priority with a usable positive-weight endpoint (else all-draining), split by zone.
      const usable = all.filter(x => x.usable);
      const serving = usable.filter(x => x.weight > 0);
      const pool = serving.length > 0 ? serving : usable;
      const top = pool.length === 0 ? undefined : Math.min(...pool.map(x => x.priority));
      const active = tiers.active;
      if (top === undefined) {
        expect(active, `step ${step}`).to.have.length(0);
        continue;
      }
      const group = active[0];
      expect(group.priority, `step ${step}`).to.equal(top);
      const expected = pool.filter(x => x.priority === top).map(x => `${x.zone}/${x.key}`).sort();
      const split = group.zones!;
      const actual = split.leaves.flatMap(leaf => leaf.endpoints.map(x => `${leaf.zone}/${x.key}`)).sort();
      expect(actual, `step ${step}`).to.deep.equal(expected);
      expect(group.size).to.equal(expected.length);
      for (const leaf of split.leaves) {
        leaf.endpoints.forEach((member, slot) => expect(member.slot).to.equal(slot));
        expect(leaf.rank).to.equal(0);
      }
      const chosen = split.choose(random);
      expect(chosen.size, `step ${step}: chose an empty zone`).to.be.greaterThan(0);
      expect(chosen.endpoints[chosen.scheduler.pick(undefined, 0)].zone).to.equal(chosen.zone);
      const total = [...split.shares().values()].reduce((x, y) => x + y, 0);
      expect(total).to.be.closeTo(1, 1e-9);
    }
  });
});
