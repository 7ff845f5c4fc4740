/**
 * One balancer's zone-routing inputs (see zone-split.ts for the rule): the
 * local zone, the calling fleet's view from the resolver's `ClientRegistrySource`
 * (subscribed only while zone routing is on), and the census of endpoints per
 * priority and zone, in any state (the fallback while there is no fleet view).
 */
import { type ClientRegistrySource, type ClientRegistrySubscription, type ClientRegistryView } from '../../discovery/client-registry-source';
import { type Tracer } from '../../common/grpc-experimental';
import { type ZoneRoutingSnapshot } from '../pool/balancer-diagnostics';
import { type EndpointState } from '../pool/endpoint-state';
import { type ZoneSplit } from './zone-split';

/**
 * One balancer's zone-routing inputs: the local zone, the fleet view, and the
 * census of endpoints per priority and zone (any state; the no-fleet fallback).
 * `version` moves on each change, so every split knows to recompute.
 */
export class ZoneRouting {
  version = 0;
  private fleet: ClientRegistryView | undefined;
  private readonly census = new Map<number, Map<string, number>>();
  private readonly censusTotal = new Map<number, number>();
  private source: ClientRegistrySource | undefined;
  private subscription: ClientRegistrySubscription | undefined;

  constructor(readonly localZone: string, private readonly trace: Tracer) {}

  /**
   * Follows the resolver's fleet source (undefined: none): one subscription at a
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
    this.trace('subscribing to the calling fleet (zone shares)');
    const subscription = source.subscribe(view => {
      if (this.subscription === subscription) this.setFleet(view);
    });
    this.subscription = subscription;
    this.setFleet(subscription.view);
  }

  destroy(): void {
    this.follow(undefined);
  }

  snapshot(split: ZoneSplit | undefined): ZoneRoutingSnapshot {
    return {
      localZone: this.localZone,
      callersFrom: this.fleetKnown ? 'fleet' : 'endpoints',
      shares: split === undefined ? {} : Object.fromEntries([...split.shares()].filter(([, share]) => share > 0)),
    };
  }

  /** Whether shares of callers come from the client registry (else from the endpoint census). */
  get fleetKnown(): boolean {
    return this.fleet !== undefined && this.fleet.clientCount > 0;
  }

  setFleet(view: ClientRegistryView | undefined): void {
    this.fleet = view;
    this.version++;
  }

  /** Counts `endpoint` under its current priority and zone (moving it if they changed). */
  track(endpoint: EndpointState): void {
    const priority = endpoint.priority;
    const zone = endpoint.zone;
    if (endpoint.countedPriority === priority && endpoint.countedZone === zone) return;
    this.untrack(endpoint);
    this.add(priority, zone, 1);
    endpoint.countedPriority = priority;
    endpoint.countedZone = zone;
  }

  untrack(endpoint: EndpointState): void {
    if (endpoint.countedPriority === undefined) return;
    this.add(endpoint.countedPriority, endpoint.countedZone!, -1);
    endpoint.countedPriority = undefined;
    endpoint.countedZone = undefined;
  }

  /** Share of the calling fleet in `zone`, for the tier of `priority`. */
  callerShare(priority: number, zone: string): number {
    const fleet = this.fleet;
    if (fleet !== undefined && fleet.clientCount > 0) return (fleet.zoneCounts.get(zone) ?? 0) / fleet.clientCount;
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
