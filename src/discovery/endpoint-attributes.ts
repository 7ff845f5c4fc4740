/**
 * How per-endpoint data (weight, priority, metadata) travels from the resolver to
 * the LB policy: grpc-js's `Endpoint` is only `{ addresses }`, but the resolver's
 * `attributes` are merged into the options the LB policy receives. The key uses
 * grpc-js's no-subchannel prefix so it never becomes part of a subchannel's
 * pool key (a weight change must not reconnect anything).
 */
import { type ChannelOptions } from '@grpc/grpc-js';
import { SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX } from '../common/grpc-experimental';

/** What a policy knows of an endpoint besides its address (from its registration). */
export interface EndpointAttributes {
  /** ≥ 0; 0 = draining. */
  readonly weight: number;
  /** Integer ≥ 0; 0 = primary. */
  readonly priority: number;
  /** User metadata from the registration. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/**
 * Channel-option key; value is a `ReadonlyMap<address, EndpointAttributes>` keyed by `host:port` / `[v6]:port`.
 * Contract with the policies (what makes an update O(changed)): a resolver that passes the
 * same map object again, patched in place, gives every endpoint whose attributes changed a
 * new `Endpoint` object; an endpoint passed as the same object keeps its attributes. Any other
 * resolver (new objects, a new map each time) is compared by value: O(1) per unchanged endpoint.
 */
export const ENDPOINT_ATTRIBUTES_KEY = `${SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}etcd_lb.endpoint_attributes`;

export const DEFAULT_ENDPOINT_ATTRIBUTES: EndpointAttributes = Object.freeze({ weight: 1, priority: 0, metadata: Object.freeze({}) });

/** The attribute map in LB options, if a resolver of ours supplied one. */
export function endpointAttributesFrom(options: ChannelOptions): ReadonlyMap<string, EndpointAttributes> | undefined {
  const value = (options as Record<string, unknown>)[ENDPOINT_ATTRIBUTES_KEY];
  return value instanceof Map ? (value as ReadonlyMap<string, EndpointAttributes>) : undefined;
}
