/**
 * Which endpoints are in which tier: the `TierSet` of the current strategy (split by
 * tag and by zone when those are on) and the panic threshold that lets READY but
 * unhealthy endpoints back into a tier in panic. One endpoint's change is one `place`
 * (O(changed)); only a new config, a new zone or a panic flip places many again.
 */
import { type Tracer } from '../../common/grpc-experimental';
import { getLocality } from '../../discovery/locality';
import { type BalancerMetrics } from '../../metrics/balancer-metrics';
import { type PanicGuard } from '../health/panic-threshold';
import { type EtcdPolicyConfig } from '../policies/policy-config';
import { type TierScheduler } from '../schedulers/pick-strategy';
import { TierSet } from '../tiers/tier-set';
import { TagRouting } from '../tiers/tiered-picker';
import { ZoneRouting } from '../tiers/zone-routing';
import { type ZoneRoutingSnapshot } from './balancer-snapshot';
import { type EndpointState } from './endpoint-state';
import { PanicMode } from './panic-mode';

/** What the placement needs of its policy. */
export interface PlacementPolicy {
  readonly typeName: string;
  readonly trace: Tracer;
  readonly zoneAware?: boolean;
}

export class TierPlacement {
  /** The live tiers; undefined before the first config and after `clear()`. */
  tiers: TierSet | undefined;
  /** Set while the process has a zone (zone-aware routing on). */
  zoning: ZoneRouting | undefined;
  /** Set while the config has `tagRouting`. */
  tagRouting: TagRouting | undefined;
  /** Set while health checking is on with a panic threshold. */
  private panic: PanicGuard | undefined;
  private readonly panicMode: PanicMode;

  /**
   * @param endpoints The balancer's endpoints (placed again on a config, a zone or a panic flip).
   * @param changed Called after a panic flip moved endpoints (publish a picker).
   */
  constructor(
    private readonly policy: PlacementPolicy,
    metrics: BalancerMetrics | undefined,
    private readonly endpoints: () => Iterable<EndpointState>,
    private readonly changed: () => void,
  ) {
    this.panicMode = new PanicMode(policy.typeName, metrics, priority => this.panicFlipped(priority));
  }

  /** Whether a tier is in panic (diagnostics). */
  get anyPanic(): boolean {
    return this.panic?.anyPanic ?? false;
  }

  /** `state` changed (usable, health verdict, priority or weight): it moves into, within or out of its tier. */
  place(state: EndpointState): void {
    this.panic?.track(state);
    this.tiers?.place(state, this.placeable(state));
  }

  /** Slow start re-weighted `state`: placed again if it is in a tier. */
  reweigh(state: EndpointState): void {
    if (!state.forgotten && this.placeable(state)) this.tiers?.place(state, true);
  }

  /** `state`'s attributes were read again; `moved` when its tier placement may change. */
  attributesChanged(state: EndpointState, moved: boolean): void {
    this.zoning?.track(state);
    if (moved) this.place(state);
  }

  /** Takes a dropped endpoint out of the zones and tiers. */
  remove(state: EndpointState): void {
    this.zoning?.untrack(state);
    this.tiers?.place(state, false);
  }

  /** Forgets a dropped endpoint's health verdict (after its connectivity is gone). */
  release(state: EndpointState): void {
    this.panic?.untrack(state);
  }

  /**
   * Turns zone-aware routing on once the process has a zone (read per resolution:
   * `register({ locality })` may come after this channel was made). True when it
   * just turned on: every endpoint is counted and the tiers must be rebuilt split by zone.
   */
  applyLocality(): boolean {
    const zone = getLocality()?.zone;
    if (this.policy.zoneAware === false) return false;
    if (zone === undefined || zone === this.zoning?.localZone) return false;
    this.policy.trace(`zone-aware routing on, local zone '${zone}'`);
    const zoning = new ZoneRouting(zone, this.policy.trace);
    for (const state of this.endpoints()) zoning.track(state);
    this.zoning = zoning;
    return true;
  }

  /** New tiers for a new strategy (or zoning): every placeable endpoint placed again. */
  rebuild(config: EtcdPolicyConfig, createScheduler: () => TierScheduler): void {
    this.panic = this.panicMode.configure(config);
    if (this.panic !== undefined) for (const state of this.endpoints()) this.panic.track(state);
    const tiers = new TierSet(createScheduler, this.zoning, config.tagRouting !== undefined);
    this.tagRouting = config.tagRouting === undefined ? undefined : new TagRouting(config.tagRouting, this.policy.typeName);
    this.tiers = tiers;
    for (const state of this.endpoints()) {
      state.placeIn(undefined, -1, state.placedWeight);
      if (this.placeable(state)) tiers.place(state, true);
    }
  }

  /** Zone routing for `inspectBalancers()`: shares of the tier taking the traffic (an untagged call's, and each tag's with `tagRouting`). */
  zoneSnapshot(): ZoneRoutingSnapshot | undefined {
    if (this.zoning === undefined) return undefined;
    const top = this.tiers?.active[0];
    const tags = top?.tags;
    if (tags === undefined) return this.zoning.snapshot(top?.zones?.shares());
    const byTag = new Map<string, ReadonlyMap<string, number>>();
    tags.forEachUsable((tag, leaf) => {
      const shares = leaf.zones?.shares();
      if (shares !== undefined) byTag.set(tag, shares);
    });
    return this.zoning.snapshot(tags.forCall('', false)?.zones?.shares(), byTag);
  }

  /** Drops the tiers and zones (the balancer is destroyed). */
  clear(): void {
    this.zoning?.destroy();
    this.tiers = undefined;
  }

  /** Whether `state` belongs in a tier: usable, or READY with a verdict in a tier in panic. */
  private placeable(state: EndpointState): boolean {
    return state.usable || (state.healthKnown && this.panic !== undefined && this.panic.inPanic(state.priority));
  }

  /** A priority entered or left panic: its endpoints move in or out of its tier (O(n), rare). */
  private panicFlipped(priority: number): void {
    const tiers = this.tiers;
    if (tiers === undefined) return;
    for (const state of this.endpoints()) if (state.priority === priority && !state.forgotten) tiers.place(state, this.placeable(state));
    this.changed();
  }
}
