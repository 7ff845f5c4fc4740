/**
 * Priority tiers, kept up to date one endpoint at a time.
 *
 * Per priority two groups: serving (usable, weight > 0) and draining (usable,
 * weight 0), each a dense list with swap-remove and its own scheduler. The
 * active tiers (what the picker uses, in priority order) are the non-empty
 * serving groups, or, when there are none, the non-empty draining groups with
 * equal weights (draining beats failing). Moving an endpoint costs its
 * scheduler's add/remove (O(1) or O(log n)); the active list is rebuilt only
 * when a group becomes empty or non-empty (O(p log p) for p priorities).
 *
 * Time-varying weights (slow start, slow-start.ts): a new effective weight
 * is one `place()` (a `setWeight`, O(log n)). Only the endpoints inside their
 * warm-up window are recomputed, on one timer per balancer, every
 * max(100 ms, windowMs / 10): O(k log n) per tick for k warming endpoints,
 * nothing for the others; WRR stays on its EDF heap while weights move and
 * rebuilds its exact period once they settle.
 *
 * Zone-aware routing (zone-split.ts): with a `ZoneRouting`, each group is a
 * priority tier split by zone: it holds no endpoints itself, its `zones` hold
 * one tier per zone (own endpoints, own scheduler, `parent` = the group), and
 * an endpoint lives in its zone's tier. Moving an endpoint costs the same as
 * without zones; the split's shares are recomputed lazily (O(zones)).
 */
import { ensureUint8 } from '../schedulers/growable';
import { type EndpointState } from '../pool/endpoint-state';
import { type TierScheduler } from '../schedulers/pick-strategy';
import { type ZoneRouting } from './zone-routing';
import { ZoneSplit } from './zone-split';

/** The scheduler slot of a zone-split group, which picks through its zones' tiers and never through this. */
const PICKS_THROUGH_ZONES: TierScheduler = Object.freeze({ pick: () => 0, add: () => {}, remove: () => {}, setWeight: () => {} });

/** One group's endpoints, its scheduler, and scratch flags for picks that avoid endpoints. */
export class Tier {
  readonly endpoints: EndpointState[] = [];
  /** Flags of endpoints a pick must avoid (see TieredPicker); all 0 between picks. */
  excluded = new Uint8Array(0);
  excludedCount = 0;
  /** Index in the active list, or -1 while not active (a zone's tier has its group's). */
  rank = -1;
  /** A zone's tier: the zone-split group it belongs to. */
  parent: Tier | undefined;
  /** A zone-split group: its zones' tiers (it then holds no endpoints itself). */
  zones: ZoneSplit | undefined;

  /** `zone`: of a zone's tier ('' otherwise, or for endpoints without one). */
  constructor(readonly priority: number, readonly draining: boolean, readonly scheduler: TierScheduler, readonly zone = '') {}

  /** Usable endpoints in it (a zone-split group: in all its zones). */
  get size(): number {
    return this.zones === undefined ? this.endpoints.length : this.zones.size;
  }

  add(endpoint: EndpointState, weight: number): void {
    endpoint.tier = this;
    endpoint.slot = this.endpoints.length;
    endpoint.placedWeight = weight;
    this.endpoints.push(endpoint);
    this.excluded = ensureUint8(this.excluded, this.endpoints.length);
    this.scheduler.add(endpoint, weight);
  }

  remove(endpoint: EndpointState): void {
    const slot = endpoint.slot;
    const last = this.endpoints.pop()!;
    if (last !== endpoint) {
      this.endpoints[slot] = last;
      last.slot = slot;
    }
    this.scheduler.remove(slot);
    endpoint.tier = undefined;
    endpoint.slot = -1;
  }

  setWeight(endpoint: EndpointState, weight: number): void {
    endpoint.placedWeight = weight;
    this.scheduler.setWeight(endpoint.slot, weight);
  }

  /** A tier of fixed members whose scheduler already holds them (tests, benches). */
  static of(priority: number, endpoints: readonly EndpointState[], scheduler: TierScheduler): Tier {
    const tier = new Tier(priority, false, scheduler);
    for (const endpoint of endpoints) {
      endpoint.tier = tier;
      endpoint.slot = tier.endpoints.length;
      tier.endpoints.push(endpoint);
    }
    tier.excluded = ensureUint8(tier.excluded, endpoints.length);
    return tier;
  }
}

/** What a picker reads: the active tiers, live. */
export interface TierView {
  /** In priority order; the first takes the traffic. Empty when nothing is usable (picks queue). */
  readonly active: readonly Tier[];
}

/** A fixed list of tiers as a view (tests, benches). */
export function fixedTierView(tiers: readonly Tier[]): TierView {
  tiers.forEach((tier, rank) => { tier.rank = rank; });
  return { active: tiers };
}

interface Groups {
  readonly serving: Tier;
  readonly draining: Tier;
}

export class TierSet implements TierView {
  private readonly groups = new Map<number, Groups>();
  private activeTiers: Tier[] = [];
  private stale = false;

  /**
   * `createScheduler` makes an empty scheduler for a new group (or zone's tier);
   * with `zoning`, groups are split by zone.
   */
  constructor(private readonly createScheduler: () => TierScheduler, private readonly zoning?: ZoneRouting) {}

  get active(): readonly Tier[] {
    if (this.stale) this.rebuildActive();
    return this.activeTiers;
  }

  /** Puts `endpoint` where it belongs now: by priority and weight when usable, nowhere otherwise. */
  place(endpoint: EndpointState, usable: boolean): void {
    let target = usable ? this.groupsOf(endpoint.priority)[endpoint.weight > 0 ? 'serving' : 'draining'] : undefined;
    if (target?.zones !== undefined) target = target.zones.leafFor(endpoint.zone);
    const current = endpoint.tier;
    if (current === target) {
      if (target !== undefined && !target.draining && endpoint.placedWeight !== endpoint.effectiveWeight) target.setWeight(endpoint, endpoint.effectiveWeight);
      return;
    }
    if (current !== undefined) {
      current.remove(endpoint);
      const group = current.parent ?? current;
      group.zones?.changed(-1);
      if (group.size === 0) this.stale = true;
    }
    if (target !== undefined) {
      const group = target.parent ?? target;
      if (group.size === 0) this.stale = true;
      target.add(endpoint, target.draining ? 1 : endpoint.effectiveWeight);
      group.zones?.changed(1);
    }
  }

  /** Visits every group that has usable endpoints, serving and draining apart (metrics). */
  forEachGroup(visit: (priority: number, draining: boolean, size: number) => void): void {
    for (const [priority, groups] of this.groups) {
      if (groups.serving.size > 0) visit(priority, false, groups.serving.size);
      if (groups.draining.size > 0) visit(priority, true, groups.draining.size);
    }
  }

  private groupsOf(priority: number): Groups {
    let groups = this.groups.get(priority);
    if (groups === undefined) {
      groups = { serving: this.createGroup(priority, false), draining: this.createGroup(priority, true) };
      this.groups.set(priority, groups);
    }
    return groups;
  }

  private createGroup(priority: number, draining: boolean): Tier {
    const zoning = this.zoning;
    if (zoning === undefined) return new Tier(priority, draining, this.createScheduler());
    const group = new Tier(priority, draining, PICKS_THROUGH_ZONES);
    group.zones = new ZoneSplit(zoning, group, zone => new Tier(priority, draining, this.createScheduler(), zone));
    return group;
  }

  private rebuildActive(): void {
    this.stale = false;
    for (const tier of this.activeTiers) {
      tier.rank = -1;
      tier.zones?.setRank(-1);
    }
    const priorities: number[] = [];
    for (const [priority, groups] of this.groups) {
      // Empty groups go (their schedulers with them); a priority that comes back starts fresh.
      if (groups.serving.size === 0 && groups.draining.size === 0) this.groups.delete(priority);
      else priorities.push(priority);
    }
    priorities.sort((a, b) => a - b);
    let active = priorities.map(p => this.groups.get(p)!.serving).filter(t => t.size > 0);
    if (active.length === 0) active = priorities.map(p => this.groups.get(p)!.draining).filter(t => t.size > 0);
    active.forEach((tier, rank) => {
      tier.rank = rank;
      tier.zones?.setRank(rank);
    });
    this.activeTiers = active;
  }
}
