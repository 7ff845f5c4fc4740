/**
 * What the channel state is, from the pool's counters: the decision behind every
 * picker the pool publishes, as grpc-js `round_robin` makes it, plus the startup
 * hold. Pure, so the rules read in one place.
 */
import { connectivityState as ConnectivityState, type StatusObject } from '@grpc/grpc-js';

export interface PoolCounts {
  /** Endpoints in the latest resolution. */
  readonly endpoints: number;
  /** Some tier has a usable endpoint. */
  readonly usable: boolean;
  readonly connecting: number;
  readonly failed: number;
  readonly ready: number;
  /** Connections READY (healthy or not). */
  readonly connected: number;
  readonly healthChecking: boolean;
  readonly lastError: string | null;
}

export type ChannelDecision =
  /** READY with a picker over the live tiers. */
  | { readonly kind: 'pick' }
  /** Calls wait (CONNECTING or IDLE). */
  | { readonly kind: 'queue'; readonly state: ConnectivityState }
  /** TRANSIENT_FAILURE: calls fail with this status. */
  | { readonly kind: 'fail'; readonly status: Partial<StatusObject> & { details: string } };

/**
 * @param hold whether the startup hold still wants to wait for connecting endpoints.
 * @param resolutionError the resolver's error, if it gave one instead of a list.
 */
export function decideChannelState(
  counts: PoolCounts, hold: (connecting: number) => boolean, policy: string,
  resolutionError: StatusObject | undefined, resolutionNote: string,
): ChannelDecision {
  if (counts.endpoints === 0) {
    if (resolutionError !== undefined) return { kind: 'fail', status: resolutionError };
    // Accepted (as round_robin does): an empty service is a state, and calls should fail fast with
    // this message. Returning false would leave calls waiting for name resolution until their deadline.
    return { kind: 'fail', status: { details: `${policy}: no addresses resolved. Resolution note: ${resolutionNote}` } };
  }
  if (counts.usable) return hold(counts.connecting) ? { kind: 'queue', state: ConnectivityState.CONNECTING } : { kind: 'pick' };
  if (counts.connecting > 0) return { kind: 'queue', state: ConnectivityState.CONNECTING };
  if (counts.failed > 0 || counts.ready > 0) {
    // READY but unusable (ejected by outlier_detection) counts as a failure too.
    const problem = counts.healthChecking && counts.connected > 0 ? 'no healthy endpoint' : 'no connection established';
    return { kind: 'fail', status: { details: `${policy}: ${problem}. Last error: ${counts.lastError}` } };
  }
  return { kind: 'queue', state: ConnectivityState.IDLE };
}
