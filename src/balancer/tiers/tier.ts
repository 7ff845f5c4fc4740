/**
 * A tier: one group of usable endpoints (a priority's serving or draining
 * endpoints, or one zone's share of them) as a dense list with swap-remove and
 * its own scheduler, so moving an endpoint costs the scheduler's add/remove.
 * `TierSet` (tier-set.ts) keeps the tiers of a balancer.
 *
 * Tiers hold `TierMember`s, not the pool's `EndpointState`: the pool depends on
 * the tiers, never the other way round.
 */
import { type Picker } from '../../common/grpc-experimental';
import { ensureUint8 } from '../schedulers/growable';
import { type SchedulableEndpoint, type TierScheduler } from '../schedulers/pick-strategy';
import { type TagSplit } from './tag-split';
import { type ZoneSplit } from './zone-split';

/** An endpoint as the tiers hold it and the picker picks it (the pool's `EndpointState` is one). */
export interface TierMember extends SchedulableEndpoint {
  /** `host:port` / `[v6]:port` of each address. */
  readonly addresses: readonly string[];
  /** Does the connection-level pick once the tier's scheduler chose this endpoint. */
  readonly child: { getPicker(): Picker };
  readonly priority: number;
  /** Configured weight; 0 = draining. */
  readonly weight: number;
  /** The weight its scheduler should get now (slow start scales it). */
  readonly effectiveWeight: number;
  /** '' when it has none. */
  readonly zone: string;
  /** Its registration `metadata.tag` ('' when it has none), what tag routing groups by. */
  readonly tag: string;
  /** The tier holding it, undefined while in none. */
  readonly tier: Tier | undefined;
  /** Its index in `tier`. */
  readonly slot: number;
  /** The weight `tier`'s scheduler has for it. */
  readonly placedWeight: number;
  /** Records where a tier put it; called by `Tier` only. */
  placeIn(tier: Tier | undefined, slot: number, weight: number): void;
}

/** One group's endpoints, its scheduler, and scratch flags for picks that avoid endpoints. */
export class Tier {
  readonly endpoints: TierMember[] = [];
  /** Flags of endpoints a pick must avoid (see TieredPicker); all 0 between picks. */
  excluded = new Uint8Array(0);
  excludedCount = 0;
  /** Index in the active list, or -1 while not active (a zone's tier has its group's). */
  rank = -1;
  /** A zone's tier: the zone-split tier it belongs to; a tag's tier: the tag-split group. */
  parent: Tier | undefined;
  /** A zone-split tier: its zones' tiers (it then holds no endpoints itself). */
  zones: ZoneSplit<Tier> | undefined;
  /** A tag-split group: its tags' tiers (each plain or zone-split; it holds no endpoints itself). */
  tags: TagSplit<Tier> | undefined;

  /** `zone`: of a zone's tier ('' otherwise, or for endpoints without one). */
  constructor(readonly priority: number, readonly draining: boolean, readonly scheduler: TierScheduler, readonly zone = '') {}

  /** Usable endpoints in it (a split tier: in all its zones or tags). */
  get size(): number {
    return this.zones !== undefined ? this.zones.size : this.tags !== undefined ? this.tags.size : this.endpoints.length;
  }

  /** The group it belongs to (itself when it is one): the top of its `parent` chain. */
  get group(): Tier {
    return this.parent === undefined ? this : this.parent.group;
  }

  /** Appends `endpoint` with `weight` (> 0). */
  add(endpoint: TierMember, weight: number): void {
    endpoint.placeIn(this, this.endpoints.length, weight);
    this.endpoints.push(endpoint);
    this.excluded = ensureUint8(this.excluded, this.endpoints.length);
    this.scheduler.add(endpoint, weight);
  }

  /** Removes `endpoint`; the last one takes its slot. */
  remove(endpoint: TierMember): void {
    const slot = endpoint.slot;
    const last = this.endpoints.pop()!;
    if (last !== endpoint) {
      this.endpoints[slot] = last;
      last.placeIn(this, slot, last.placedWeight);
    }
    this.scheduler.remove(slot);
    endpoint.placeIn(undefined, -1, endpoint.placedWeight);
  }

  /** Sets the weight (> 0) of `endpoint`, a member. */
  setWeight(endpoint: TierMember, weight: number): void {
    endpoint.placeIn(this, endpoint.slot, weight);
    this.scheduler.setWeight(endpoint.slot, weight);
  }

  /** A tier of fixed members whose scheduler already holds them (tests, benches). */
  static of(priority: number, endpoints: readonly TierMember[], scheduler: TierScheduler): Tier {
    const tier = new Tier(priority, false, scheduler);
    for (const endpoint of endpoints) {
      endpoint.placeIn(tier, tier.endpoints.length, endpoint.placedWeight);
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

