/**
 * Per-endpoint data travels to the policy as a channel attribute (grpc-js's `Endpoint`
 * is only `{ addresses }`), under a no-subchannel key so a weight change reconnects nothing.
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
 * Channel-option key of a `ReadonlyMap<host:port, EndpointAttributes>`. Contract: the map
 * may be patched in place, but an endpoint whose attributes changed is a new `Endpoint` object
 * (O(changed) updates); any other resolver (new objects each time) is compared by value.
 */
export const ENDPOINT_ATTRIBUTES_KEY = `${SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}etcd_lb.endpoint_attributes`;

export const DEFAULT_ENDPOINT_ATTRIBUTES: EndpointAttributes = Object.freeze({ weight: 1, priority: 0, metadata: Object.freeze({}) });

/** The attribute map in LB options, if a resolver of ours supplied one. */
export function endpointAttributesFrom(options: ChannelOptions): ReadonlyMap<string, EndpointAttributes> | undefined {
  const value = (options as Record<string, unknown>)[ENDPOINT_ATTRIBUTES_KEY];
  return value instanceof Map ? (value as ReadonlyMap<string, EndpointAttributes>) : undefined;
}
