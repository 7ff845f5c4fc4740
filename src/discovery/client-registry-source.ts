/**
 * How policies that need the calling fleet (subsetting, zone-aware routing) reach it:
 * grpc-js gives a policy no target, so the resolver passes a source as a channel
 * attribute. Lazy: nothing is announced or watched until a policy subscribes.
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
  /** `onChange` runs asynchronously (never inside `subscribe`) after each change, never after `release()`. */
  subscribe(onChange: (view: ClientRegistryView) => void): ClientRegistrySubscription;
}

/** Channel-option key whose value is a `ClientRegistrySource`. */
export const CLIENT_REGISTRY_SOURCE_KEY = `${SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}etcd_lb.client_registry_source`;

/** The fleet source in LB options, if a resolver of ours supplied one. */
export function clientRegistrySourceFrom(options: ChannelOptions): ClientRegistrySource | undefined {
  const value = (options as Record<string, unknown>)[CLIENT_REGISTRY_SOURCE_KEY];
  return value !== null && typeof value === 'object' && typeof (value as ClientRegistrySource).subscribe === 'function' ? (value as ClientRegistrySource) : undefined;
}
