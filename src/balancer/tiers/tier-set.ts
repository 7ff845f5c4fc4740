/**
 * A balancer's priority tiers, kept up to date one endpoint at a time.
 *
 * Per priority two groups: serving (usable, weight > 0) and draining (usable,
 * weight 0). The active tiers (what the picker uses, in priority order) are the
 * non-empty serving groups, or, when there are none, the non-empty draining
 * groups with equal weights (draining beats failing). Moving an endpoint costs
 * its scheduler's add/remove (O(1) or O(log n)); the active list is rebuilt
 * only when a group becomes empty or non-empty (O(p log p) for p priorities).
 * A new effective weight (slow start) is one `place()`, a `setWeight`.
 *
 * Zone-aware routing (zone-split.ts): with a `ZoneRouting`, each group holds no
 * endpoints itself; its `zones` hold one tier per zone (`parent` = the group),
 * and an endpoint lives in its zone's tier. Tag routing (tag-split.ts) splits
 * a group by tag first: the group's `tags` hold one tier per tag, each of
 * them split by zone in turn when zones are on.
 */
import { type TierScheduler } from '../schedulers/pick-strategy';
import { Tier, type TierMember, type TierView } from './tier';
import { TagSplit } from './tag-split';
import { type ZoneRouting } from './zone-routing';
import { ZoneSplit } from './zone-split';

/** The scheduler slot of a split tier, which picks through its zones' or tags' tiers and never through this. */
const PICKS_THROUGH_ZONES: TierScheduler = Object.freeze({ pick: () => 0, add: () => {}, remove: () => {}, setWeight: () => {} });

interface Groups {
  readonly serving: Tier;
  readonly draining: Tier;
}

/** The tiers of one balancer; `active` is what its picker reads. */
export class TierSet implements TierView {
  private readonly groups = new Map<number, Groups>();
  private activeTiers: Tier[] = [];
  private stale = false;

  /**
   * `createScheduler` makes an empty scheduler for a new group (or zone's tier);
   * with `zoning`, groups are split by zone.
   */
  constructor(private readonly createScheduler: () => TierScheduler, private readonly zoning?: ZoneRouting, private readonly tagging = false) {}

  get active(): readonly Tier[] {
    if (this.stale) this.rebuildActive();
    return this.activeTiers;
  }

  /** Puts `endpoint` where it belongs now: by priority and weight when usable, nowhere otherwise. */
  place(endpoint: TierMember, usable: boolean): void {
    let target = usable ? this.groupsOf(endpoint.priority)[endpoint.weight > 0 ? 'serving' : 'draining'] : undefined;
    if (target?.tags !== undefined) target = target.tags.leafFor(endpoint.tag);
    if (target?.zones !== undefined) target = target.zones.leafFor(endpoint.zone);
    const current = endpoint.tier;
    if (current === target) {
      if (target !== undefined && !target.draining && endpoint.placedWeight !== endpoint.effectiveWeight) target.setWeight(endpoint, endpoint.effectiveWeight);
      return;
    }
    if (current !== undefined) {
      current.remove(endpoint);
      countUp(current, -1);
      if (current.group.size === 0) this.stale = true;
    }
    if (target !== undefined) {
      if (target.group.size === 0) this.stale = true;
      target.add(endpoint, target.draining ? 1 : endpoint.effectiveWeight);
      countUp(target, 1);
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
    if (!this.tagging) return this.createZoned(priority, draining);
    const group = new Tier(priority, draining, PICKS_THROUGH_ZONES);
    group.tags = new TagSplit(() => {
      const leaf = this.createZoned(priority, draining);
      leaf.parent = group;
      return leaf;
    });
    return group;
  }

  /** A tier of one priority (or of one of its tags), split by zone when zones are on. */
  private createZoned(priority: number, draining: boolean): Tier {
    const zoning = this.zoning;
    if (zoning === undefined) return new Tier(priority, draining, this.createScheduler());
    const split = new Tier(priority, draining, PICKS_THROUGH_ZONES);
    split.zones = new ZoneSplit(zoning, priority, zone => {
      const leaf = new Tier(priority, draining, this.createScheduler(), zone);
      leaf.parent = split;
      return leaf;
    });
    return split;
  }

  private rebuildActive(): void {
    this.stale = false;
    for (const tier of this.activeTiers) setRank(tier, -1);
    const priorities: number[] = [];
    for (const [priority, groups] of this.groups) {
      // Empty groups go (their schedulers with them); a priority that comes back starts fresh.
      if (groups.serving.size === 0 && groups.draining.size === 0) this.groups.delete(priority);
      else priorities.push(priority);
    }
    priorities.sort((a, b) => a - b);
    let active = priorities.map(p => this.groups.get(p)!.serving).filter(t => t.size > 0);
    if (active.length === 0) active = priorities.map(p => this.groups.get(p)!.draining).filter(t => t.size > 0);
    active.forEach((tier, rank) => setRank(tier, rank));
    this.activeTiers = active;
  }
}

/** Tells the splits above `leaf` that an endpoint joined (+1) or left (-1) it. */
function countUp(leaf: Tier, delta: number): void {
  for (let tier = leaf.parent; tier !== undefined; tier = tier.parent) {
    tier.zones?.changed(delta);
    tier.tags?.changed(delta);
  }
}

/** Sets the rank of a group and of every tier under it. */
function setRank(tier: Tier, rank: number): void {
  tier.rank = rank;
  tier.zones?.setRank(rank);
  tier.tags?.setRank(rank, setRank);
}
