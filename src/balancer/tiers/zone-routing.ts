/**
 * One balancer's zone-routing inputs (see zone-split.ts for the rule): the
 * local zone, the callers' view from the resolver's client registry
 * (`ClientRegistrySource`, subscribed only while zone routing is on), and the
 * census of endpoints per priority and zone, in any state (the fallback while
 * the client registry has not answered).
 */
import { type ClientRegistrySource, type ClientRegistrySubscription, type ClientRegistryView } from '../../discovery/client-registry-source';
import { type Tracer } from '../../common/grpc-experimental';
import { type ZoneRoutingSnapshot } from '../pool/balancer-snapshot';

/** What the census counts an endpoint by. */
export interface ZoneCensusMember {
  readonly priority: number;
  readonly zone: string;
}

/**
 * One balancer's zone-routing inputs. `version` moves on each change, so every
 * split knows to recompute.
 */
export class ZoneRouting {
  version = 0;
  private registryView: ClientRegistryView | undefined;
  private readonly census = new Map<number, Map<string, number>>();
  private readonly censusTotal = new Map<number, number>();
  /** Where each tracked endpoint is counted. */
  private readonly counted = new Map<ZoneCensusMember, ZoneCensusMember>();
  private source: ClientRegistrySource | undefined;
  private subscription: ClientRegistrySubscription | undefined;

  constructor(readonly localZone: string, private readonly trace: Tracer) {}

  /**
   * Follows the resolver's client registry (undefined: none): one subscription at a
   * time, released when the source goes or changes, and by `destroy()`.
   */
  follow(source: ClientRegistrySource | undefined): void {
    if (source === this.source) return;
    this.subscription?.release();
    this.subscription = undefined;
    this.source = source;
    if (source === undefined) {
      this.setFleet(undefined);
      return;
    }
    this.trace('subscribing to the client registry (zone shares)');
    const subscription = source.subscribe(view => {
      if (this.subscription === subscription) this.setFleet(view);
    });
    this.subscription = subscription;
    this.setFleet(subscription.view);
  }

  destroy(): void {
    this.follow(undefined);
  }

  /** `shares`: of the split tier taking the traffic, undefined when none; `byTag` with tag routing. */
  snapshot(shares: ReadonlyMap<string, number> | undefined, byTag?: ReadonlyMap<string, ReadonlyMap<string, number>>): ZoneRoutingSnapshot {
    const positive = (s: ReadonlyMap<string, number> | undefined): Record<string, number> =>
      s === undefined ? {} : Object.fromEntries([...s].filter(([, share]) => share > 0));
    return {
      localZone: this.localZone,
      callersFrom: this.fleetKnown ? 'fleet' : 'endpoints',
      shares: positive(shares),
      ...(byTag === undefined ? {} : { sharesByTag: Object.fromEntries([...byTag].map(([tag, s]) => [tag, positive(s)])) }),
    };
  }

  /** Whether shares of callers come from the client registry (else from the endpoint census). */
  get fleetKnown(): boolean {
    return this.registryView !== undefined && this.registryView.clientCount > 0;
  }

  /** The client registry's latest view (undefined: none). */
  setFleet(view: ClientRegistryView | undefined): void {
    this.registryView = view;
    this.version++;
  }

  /** Counts `endpoint` under its current priority and zone (moving it if they changed). */
  track(endpoint: ZoneCensusMember): void {
    const priority = endpoint.priority;
    const zone = endpoint.zone;
    const counted = this.counted.get(endpoint);
    if (counted?.priority === priority && counted.zone === zone) return;
    this.untrack(endpoint);
    this.add(priority, zone, 1);
    this.counted.set(endpoint, { priority, zone });
  }

  /** Stops counting `endpoint` (it left the balancer). */
  untrack(endpoint: ZoneCensusMember): void {
    const counted = this.counted.get(endpoint);
    if (counted === undefined) return;
    this.add(counted.priority, counted.zone, -1);
    this.counted.delete(endpoint);
  }

  /** Share of the callers in `zone`, for the tier of `priority`. */
  callerShare(priority: number, zone: string): number {
    const view = this.registryView;
    if (view !== undefined && view.clientCount > 0) return (view.zoneCounts.get(zone) ?? 0) / view.clientCount;
    const total = this.censusTotal.get(priority) ?? 0;
    return total === 0 ? 0 : (this.census.get(priority)?.get(zone) ?? 0) / total;
  }

  private add(priority: number, zone: string, delta: number): void {
    let zones = this.census.get(priority);
    if (zones === undefined) this.census.set(priority, zones = new Map());
    const count = (zones.get(zone) ?? 0) + delta;
    if (count === 0) zones.delete(zone);
    else zones.set(zone, count);
    const total = (this.censusTotal.get(priority) ?? 0) + delta;
    if (total === 0) {
      this.censusTotal.delete(priority);
      this.census.delete(priority);
    } else {
      this.censusTotal.set(priority, total);
    }
    this.version++;
  }
}
