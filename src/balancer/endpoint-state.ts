/**
 * One resolved endpoint as the shared balancer layer sees it: its child (a
 * grpc-js `LeafLoadBalancer`: connection, reconnect with backoff), its
 * attributes from the resolver, its last reported connectivity state and its
 * call accounting. Attributes change in place, so a weight or priority change
 * never touches the connection.
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { type Picker } from '../grpc-experimental';
import { type CallLoad } from './call-load';
import { DEFAULT_ENDPOINT_ATTRIBUTES, type EndpointAttributes } from './endpoint-attributes';
import { type SchedulableEndpoint } from './tier-scheduler';

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
}
