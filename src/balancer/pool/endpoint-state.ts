/**
 * One resolved endpoint as the shared balancer layer sees it: its child (a
 * grpc-js `LeafLoadBalancer`: connection, reconnect with backoff), its
 * attributes from the resolver, its last reported connectivity state and its
 * call accounting. Attributes change in place, so a weight or priority change
 * never touches the connection.
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { type Endpoint, type Picker } from '../../common/grpc-experimental';
import { type CallLoad } from './call-load';
import { DEFAULT_ENDPOINT_ATTRIBUTES, type EndpointAttributes } from '../../discovery/endpoint-attributes';
import { type Tier } from '../tiers/tier';
import { type SchedulableEndpoint } from '../schedulers/pick-strategy';

/** The part of `LeafLoadBalancer` the layer uses (a seam for unit tests). */
export interface EndpointChild {
  startConnecting(): void;
  exitIdle(): void;
  getPicker(): Picker;
  destroy(): void;
}

let nextEndpointId = 1;

export class EndpointState implements SchedulableEndpoint {
  /** Unique per child instance: unchanged across updates while the endpoint stays (diagnostics, tests). */
  readonly id = nextEndpointId++;
  attributes: EndpointAttributes = DEFAULT_ENDPOINT_ATTRIBUTES;
  /** Latest state reported by the child. */
  state: ConnectivityState = ConnectivityState.IDLE;
  /** Times the child reached READY (a reconnect shows here). */
  timesReady = 0;
  /** Set right after construction, once the child's helper can refer to this object. */
  child!: EndpointChild;
  /** The endpoint object of the latest resolution (the same object again = nothing to do). */
  endpoint: Endpoint | undefined;
  /** The tier holding it while usable, its index there and the weight its scheduler has (see `TierSet`). */
  tier: Tier | undefined;
  slot = -1;
  placedWeight = 0;
  /** Whether its last reported connectivity makes it usable (READY, and healthy with health checking on). */
  usable = false;
  /** Whether its connection is READY (healthy or not): re-resolution and `timesReady` follow this. */
  connected = false;
  /** The balancer's update that last listed it. */
  generation = 0;
  /** Set once the balancer dropped it (removed, or replaced by a new child). */
  forgotten = false;
  /** Its index in the balancer's last resolution. */
  listIndex = -1;
  /** The attribute object last received for it (the same object again = nothing to do). */
  received: EndpointAttributes | undefined;
  /** The last definite grpc.health.v1 verdict of its connection (health checking on), for counting flips. */
  healthVerdict: 'healthy' | 'unhealthy' | undefined;
  /** Share of its weight it gets while warming up (slow start); 1 when warm. */
  slowStartFactor = 1;
  /** When its current warm-up started, or undefined when it is not warming (see `SlowStartTracker`). */
  warmStartMs: number | undefined;
  /** When it last stopped being usable (-Infinity: never usable here and not from the first resolution). */
  unusableSinceMs = -Infinity;
  /** Priority and zone it is counted under in the zone census (see `ZoneRouting.track`), undefined while not counted. */
  countedPriority: number | undefined;
  countedZone: string | undefined;

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
    return this.attributes.weight * this.slowStartFactor;
  }

  /** Its zone from registration `metadata.zone`; '' when it has none (another zone to every client that declares one). */
  get zone(): string {
    const zone = this.attributes.metadata.zone;
    return typeof zone === 'string' ? zone : '';
  }
}
