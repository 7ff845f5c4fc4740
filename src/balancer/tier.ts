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
 * Time-varying weights (slow start) fit as they are: a new effective weight
 * is one `place()` (a `setWeight`, O(log n)). The plan is to recompute only
 * the endpoints inside their warm-up window, on one timer per balancer, every
 * max(100 ms, windowMs / 10): O(k log n) per tick for k warming endpoints,
 * nothing for the others; WRR stays on its EDF heap while weights move and
 * rebuilds its exact period once they settle.
 */
import { ensureUint8 } from './growable';
import { type EndpointState } from './endpoint-state';
import { type TierScheduler } from './tier-scheduler';

/** One group's endpoints, its scheduler, and scratch flags for picks that avoid endpoints. */
export class Tier {
  readonly endpoints: EndpointState[] = [];
  /** Flags of endpoints a pick must avoid (see TieredPicker); all 0 between picks. */
  excluded = new Uint8Array(0);
  excludedCount = 0;
  /** Index in the active list, or -1 while not active. */
  rank = -1;

  constructor(readonly priority: number, readonly draining: boolean, readonly scheduler: TierScheduler) {}

  get size(): number {
    return this.endpoints.length;
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

  /** `createScheduler` makes an empty scheduler for a new group. */
  constructor(private readonly createScheduler: () => TierScheduler) {}

  get active(): readonly Tier[] {
    if (this.stale) this.rebuildActive();
    return this.activeTiers;
  }

  /** Puts `endpoint` where it belongs now: by priority and weight when usable, nowhere otherwise. */
  place(endpoint: EndpointState, usable: boolean): void {
    const target = usable ? this.groupsOf(endpoint.priority)[endpoint.weight > 0 ? 'serving' : 'draining'] : undefined;
    const current = endpoint.tier;
    if (current === target) {
      if (target !== undefined && !target.draining && endpoint.placedWeight !== endpoint.effectiveWeight) target.setWeight(endpoint, endpoint.effectiveWeight);
      return;
    }
    if (current !== undefined) {
      current.remove(endpoint);
      if (current.size === 0) this.stale = true;
    }
    if (target !== undefined) {
      if (target.size === 0) this.stale = true;
      target.add(endpoint, target.draining ? 1 : endpoint.effectiveWeight);
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
      groups = { serving: new Tier(priority, false, this.createScheduler()), draining: new Tier(priority, true, this.createScheduler()) };
      this.groups.set(priority, groups);
    }
    return groups;
  }

  private rebuildActive(): void {
    this.stale = false;
    for (const tier of this.activeTiers) tier.rank = -1;
    const priorities: number[] = [];
    for (const [priority, groups] of this.groups) {
      // Empty groups go (their schedulers with them); a priority that comes back starts fresh.
      if (groups.serving.size === 0 && groups.draining.size === 0) this.groups.delete(priority);
      else priorities.push(priority);
    }
    priorities.sort((a, b) => a - b);
    let active = priorities.map(p => this.groups.get(p)!.serving).filter(t => t.size > 0);
    if (active.length === 0) active = priorities.map(p => this.groups.get(p)!.draining).filter(t => t.size > 0);
    active.forEach((tier, rank) => { tier.rank = rank; });
    this.activeTiers = active;
  }
}
