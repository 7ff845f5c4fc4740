/**
 * Zone-aware routing for every etcd_* policy (Envoy's), on once the process
 * declared `register({ locality: { zone } })`; an endpoint's zone is its
 * `metadata.zone` ('' when absent). Within the tier taking the traffic, each
 * zone's usable endpoints form a leaf tier (local first), and Envoy's rule
 * splits calls among them from the callers' spread (the client registry's, or
 * until it answers the endpoints' own): docs/client-registry-and-zones.md.
 * A pick draws one number against precomputed cumulative shares (none while all
 * stays local); shares are recomputed, O(zones), at the first pick after a
 * membership, census or fleet change, never per pick.
 */
import { ensureFloat64 } from '../schedulers/growable';
import { type ZoneRouting } from './zone-routing';

/** What a split needs of a zone's tier (`Tier` is one). */
export interface ZoneLeaf {
  readonly zone: string;
  /** Usable endpoints in it. */
  readonly size: number;
  /** Endpoints the current pick avoids (see TieredPicker). */
  readonly excludedCount: number;
  /** Index of the split's tier in the active list, or -1; kept equal to the split's. */
  rank: number;
}

/**
 * Envoy's rule. Index 0 is the local zone. `healthy[i]`: usable endpoints of
 * zone i in the tier; `callers[i]`: share of the calling fleet in zone i (the
 * shares of all listed zones need not sum to 1: callers may sit in zones with
 * no endpoint). Writes the probability of routing to zone i into `out[i]`
 * (summing to 1 when any endpoint is usable, all 0 otherwise).
 */
export function zoneShares(healthy: ArrayLike<number>, callers: ArrayLike<number>, count: number, out: Float64Array): void {
  let total = 0;
  for (let i = 0; i < count; i++) total += healthy[i];
  out.fill(0, 0, count);
  if (total === 0) return;
  const localUpstream = healthy[0] / total;
  const localCallers = callers[0];
  if (healthy[0] > 0 && localUpstream >= localCallers) {
    out[0] = 1;
    return;
  }
  // Here localCallers > localUpstream ≥ 0 (or no local endpoint at all).
  const local = healthy[0] > 0 ? localUpstream / localCallers : 0;
  let residualSum = 0;
  for (let i = 1; i < count; i++) residualSum += Math.max(0, healthy[i] / total - callers[i]);
  out[0] = local;
  for (let i = 1; i < count; i++) {
    // No residual anywhere (only when callers were unknown in the spill zones): spread like the endpoints.
    const share = residualSum > 0 ? Math.max(0, healthy[i] / total - callers[i]) / residualSum : healthy[i] / (total - healthy[0]);
    out[i] = (1 - local) * share;
  }
}

/** A priority tier split by zone: its zones' tiers and the shares between them. */
export class ZoneSplit<L extends ZoneLeaf> {
  /** Usable endpoints over all zones. */
  size = 0;
  /** Zone tiers, the local zone's first (always there, possibly empty); others dropped when empty. */
  readonly leaves: L[] = [];
  private readonly byZone = new Map<string, L>();
  private cumulative = new Float64Array(4);
  private healthy = new Float64Array(4);
  private callers = new Float64Array(4);
  private seenVersion = -1;
  private dirty = true;
  private allLocal = false;
  private rank = -1;

  /** `createLeaf(zone)` makes an empty tier for a zone of the priority tier `priority`. */
  constructor(
    private readonly routing: ZoneRouting,
    private readonly priority: number,
    private readonly createLeaf: (zone: string) => L,
  ) {
    this.leafFor(routing.localZone);
  }

  /** The zone's tier (made on first use). */
  leafFor(zone: string): L {
    let leaf = this.byZone.get(zone);
    if (leaf === undefined) {
      leaf = this.createLeaf(zone);
      leaf.rank = this.rank;
      this.byZone.set(zone, leaf);
      this.leaves.push(leaf);
      this.dirty = true;
    }
    return leaf;
  }

  /** An endpoint joined (+1) or left (-1) one of the zone tiers. */
  changed(delta: number): void {
    this.size += delta;
    this.dirty = true;
  }

  /** The split's tier got index `rank` in the active list (-1: none); its zones' tiers follow. */
  setRank(rank: number): void {
    this.rank = rank;
    for (const leaf of this.leaves) leaf.rank = rank;
  }

  /** The zone tier for the next pick (non-empty while `size > 0`): one draw, none while all is local. */
  choose(random: () => number): L {
    if (this.dirty || this.seenVersion !== this.routing.version) this.recompute();
    if (this.allLocal) return this.leaves[0];
    const r = random();
    const cumulative = this.cumulative;
    let lo = 0;
    let hi = this.leaves.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r < cumulative[mid]) hi = mid;
      else lo = mid + 1;
    }
    return this.leaves[lo];
  }

  /** As `choose`, but a zone tier with an endpoint not flagged in its `excluded` (a retry); the parent has one. */
  chooseWithRoom(random: () => number): L {
    const chosen = this.choose(random);
    if (chosen.excludedCount < chosen.size) return chosen;
    for (const leaf of this.leaves) if (leaf.excludedCount < leaf.size) return leaf;
    return chosen;
  }

  /** Probability of each zone tier (diagnostics, tests). */
  shares(): Map<string, number> {
    if (this.dirty || this.seenVersion !== this.routing.version) this.recompute();
    const result = new Map<string, number>();
    let previous = 0;
    this.leaves.forEach((leaf, i) => {
      const c = Math.min(this.cumulative[i], 1);
      result.set(leaf.zone, Math.max(0, c - previous));
      previous = Math.max(previous, c);
    });
    return result;
  }

  private recompute(): void {
    this.dirty = false;
    this.seenVersion = this.routing.version;
    // Zones left empty go (with their schedulers); the local zone's tier stays at index 0.
    let kept = 1;
    for (let i = 1; i < this.leaves.length; i++) {
      const leaf = this.leaves[i];
      if (leaf.size > 0) this.leaves[kept++] = leaf;
      else this.byZone.delete(leaf.zone);
    }
    this.leaves.length = kept;
    this.healthy = ensureFloat64(this.healthy, kept);
    this.callers = ensureFloat64(this.callers, kept);
    this.cumulative = ensureFloat64(this.cumulative, kept);
    for (let i = 0; i < kept; i++) {
      this.healthy[i] = this.leaves[i].size;
      this.callers[i] = this.routing.callerShare(this.priority, this.leaves[i].zone);
    }
    const shares = this.cumulative;
    zoneShares(this.healthy, this.callers, kept, shares);
    this.allLocal = shares[0] >= 1;
    let sum = 0;
    let last = -1;
    for (let i = 0; i < kept; i++) {
      if (shares[i] > 0) last = i;
      sum += shares[i];
      shares[i] = sum;
    }
    // Rounding must not leave a draw past the last zone that has a share.
    for (let i = Math.max(last, 0); i < kept; i++) shares[i] = Infinity;
  }
}
