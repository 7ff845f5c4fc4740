/**
 * The contract between discovery and the policies that need to know the calling
 * fleet (deterministic subsetting, zone-aware routing): grpc-js gives an LB policy
 * no target and no etcd handle, so the resolver passes a `ClientRegistrySource` as a
 * channel attribute (no-subchannel key: it never reaches a subchannel's pool key),
 * the way endpoint attributes travel (endpoint-attributes.ts).
 *
 * A source is lazy: nothing is announced or watched until a policy subscribes,
 * so channels whose policy needs no fleet cost nothing. The source's owner keeps
 * one announcement and one watch per (process, service) however many
 * subscriptions, and ends them when the last subscription is released.
 */
import { type ChannelOptions } from '@grpc/grpc-js';
import { SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX } from '../common/grpc-experimental';

/** The live clients of one service, as the client registry last saw them. */
export interface ClientRegistryView {
  /** This process's rank among the live clients (0 … clientCount - 1, stable order), or undefined while it is not in the list. */
  readonly selfIndex: number | undefined;
  /** Live clients of the service, this process included once it is announced. */
  readonly clientCount: number;
  /** Live clients per zone; clients that declared no zone count under ''. Values sum to clientCount. */
  readonly zoneCounts: ReadonlyMap<string, number>;
}

export interface ClientRegistrySubscription {
  /** The latest view, or undefined until the registry has answered (or when it cannot: no rights, unreachable). */
  readonly view: ClientRegistryView | undefined;
  /** Stops the callbacks; the last release ends the announcement and watch. Idempotent. */
  release(): void;
}

export interface ClientRegistrySource {
  /**
   * Subscribes to the fleet's view. `onChange` runs asynchronously (never inside
   * `subscribe`) after each change of the view; it is not called again after `release()`.
   */
  subscribe(onChange: (view: ClientRegistryView) => void): ClientRegistrySubscription;
}

/** Channel-option key whose value is a `ClientRegistrySource`. */
export const CLIENT_REGISTRY_SOURCE_KEY = `${SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}etcd_lb.client_registry_source`;

/** The fleet source in LB options, if a resolver of ours supplied one. */
export function clientRegistrySourceFrom(options: ChannelOptions): ClientRegistrySource | undefined {
  const value = (options as Record<string, unknown>)[CLIENT_REGISTRY_SOURCE_KEY];
  return value !== null && typeof value === 'object' && typeof (value as ClientRegistrySource).subscribe === 'function' ? (value as ClientRegistrySource) : undefined;
}
