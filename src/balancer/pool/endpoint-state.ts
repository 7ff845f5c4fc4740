/**
 * One resolved endpoint as the shared balancer layer sees it: its child (a
 * grpc-js `LeafLoadBalancer`), its attributes from the resolver, its
 * connectivity, and the bookkeeping of the modules that hold it.
 *
 * Who changes what: the balancer sets the inputs (`child`, `attributes`,
 * `usable`) and the connectivity (`report`); `EndpointList` the list fields
 * (`listed`, `forget`); `Tier` the placement (`placeIn`); `SlowStartTracker`
 * the warm-up (`setWarmUp`, `setUnusableSince`). Everything else is read-only.
 * Attributes change in place, so a weight or priority change never touches
 * the connection.
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { type Endpoint, type Picker } from '../../common/grpc-experimental';
import { type CallLoad } from './call-load';
import { DEFAULT_ENDPOINT_ATTRIBUTES, type EndpointAttributes } from '../../discovery/endpoint-attributes';
import { type Tier, type TierMember } from '../tiers/tier';

/** The part of `LeafLoadBalancer` the layer uses (a seam for unit tests). */
export interface EndpointChild {
  startConnecting(): void;
  exitIdle(): void;
  getPicker(): Picker;
  destroy(): void;
}

/** An endpoint's place in the balancer's last resolution. */
export interface ListEntry {
  /** The resolver's object (the same object again = nothing to do). */
  endpoint: Endpoint | undefined;
  /** The list update that last listed it. */
  generation: number;
  /** Its index in that list. */
  index: number;
}

let nextEndpointId = 1;

/** An endpoint of one balancer, from its first resolution until it is dropped or its child replaced. */
export class EndpointState implements TierMember {
  /** Unique per child instance: unchanged across updates while the endpoint stays (diagnostics, tests). */
  readonly id = nextEndpointId++;
  /** Set by the balancer right after construction, once the child's helper can refer to this object. */
  child!: EndpointChild;
  /** Set by the balancer from the resolver's attributes (validated). */
  attributes: EndpointAttributes = DEFAULT_ENDPOINT_ATTRIBUTES;
  /** Set by the balancer: its connectivity makes it pickable (READY, and healthy with health checking on). */
  usable = false;
  /** Set by the connectivity: a READY connection with a health verdict (health checking on); what the panic threshold counts. */
  healthKnown = false;

  private connectivity: ConnectivityState = ConnectivityState.IDLE;
  private isConnected = false;
  private readyCount = 0;
  private readonly entry: ListEntry = { endpoint: undefined, generation: 0, index: -1 };
  private isForgotten = false;
  private placedTier: Tier | undefined;
  private placedSlot = -1;
  private placedWeightValue = 0;
  private warmFactor = 1;
  private warmStart: number | undefined;
  private unusableSince = -Infinity;

  /**
   * @param key Identity across resolutions: the endpoint's addresses, in order.
   * @param addresses `host:port` / `[v6]:port` of each address.
   */
  constructor(
    readonly key: string,
    readonly addresses: readonly string[],
    readonly load: CallLoad,
  ) {}

  get weight(): number {
    return this.attributes.weight;
  }

  get priority(): number {
    return this.attributes.priority;
  }

  /** The weight its scheduler gets: the configured weight scaled by slow start. */
  get effectiveWeight(): number {
    return this.attributes.weight * this.warmFactor;
  }

  /** Its zone from registration `metadata.zone`; '' when it has none (another zone to every client that declares one). */
  get zone(): string {
    const zone = this.attributes.metadata.zone;
    return typeof zone === 'string' ? zone : '';
  }

  /** Its tag from registration `metadata.tag`; '' when it has none (tag routing's untagged endpoints). */
  get tag(): string {
    const tag = this.attributes.metadata.tag;
    return typeof tag === 'string' ? tag : '';
  }

  /** Latest state reported by the child (or derived from health). */
  get state(): ConnectivityState {
    return this.connectivity;
  }

  /** Whether its connection is READY (healthy or not): re-resolution and `timesReady` follow this. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Times the child reached READY (a reconnect shows here). */
  get timesReady(): number {
    return this.readyCount;
  }

  /** Records a connectivity report (the balancer's aggregation calls this). */
  report(connectivity: ConnectivityState, connected: boolean): void {
    this.connectivity = connectivity;
    if (connected && !this.isConnected) this.readyCount++;
    this.isConnected = connected;
  }

  /** Its place in the balancer's last resolution (`EndpointList` changes it through `listed`). */
  get listing(): Readonly<ListEntry> {
    return this.entry;
  }

  /** Set once the balancer dropped it (removed, or replaced by a new child). */
  get forgotten(): boolean {
    return this.isForgotten;
  }

  /** `EndpointList`: listed by update `generation` at `index`, as `endpoint`. */
  listed(generation: number, index: number, endpoint: Endpoint): void {
    this.entry.generation = generation;
    this.entry.index = index;
    this.entry.endpoint = endpoint;
  }

  /** `EndpointList`: dropped for good. */
  forget(): void {
    this.isForgotten = true;
  }

  /** The tier holding it while usable (see `TierSet`). */
  get tier(): Tier | undefined {
    return this.placedTier;
  }

  /** Its index in `tier`. */
  get slot(): number {
    return this.placedSlot;
  }

  /** The weight its tier's scheduler has for it. */
  get placedWeight(): number {
    return this.placedWeightValue;
  }

  /** `Tier`: now at `slot` of `tier` (undefined, -1: in none) with `weight`. */
  placeIn(tier: Tier | undefined, slot: number, weight: number): void {
    this.placedTier = tier;
    this.placedSlot = slot;
    this.placedWeightValue = weight;
  }

  /** Share of its weight it gets while warming up (slow start); 1 when warm. */
  get slowStartFactor(): number {
    return this.warmFactor;
  }

  /** When its current warm-up started, or undefined when it is not warming (see `SlowStartTracker`). */
  get warmStartMs(): number | undefined {
    return this.warmStart;
  }

  /** When it last stopped being usable (-Infinity: never usable here and not from the first resolution). */
  get unusableSinceMs(): number {
    return this.unusableSince;
  }

  /** `SlowStartTracker`: its warm-up factor and start (undefined: not warming). */
  setWarmUp(factor: number, startMs: number | undefined): void {
    this.warmFactor = factor;
    this.warmStart = startMs;
  }

  /** `SlowStartTracker`: when it last stopped being usable. */
  setUnusableSince(ms: number): void {
    this.unusableSince = ms;
  }
}
