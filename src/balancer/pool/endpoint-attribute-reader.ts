/**
 * Reads an endpoint's attributes (weight, priority, metadata) from the map the
 * resolver delivers, and validates them: a bad value is a resolver bug, so the
 * endpoint stays, with the default for the bad field and one warning.
 */
import { WarnOnce } from '../../common/warn-once';
import { checkPriority, checkWeight } from '../../discovery/endpoint-record';
import { DEFAULT_ENDPOINT_ATTRIBUTES, type EndpointAttributes } from '../../discovery/endpoint-attributes';
import { type EndpointState } from './endpoint-state';

/** One balancer's attribute reading; warnings name the policy. */
export class EndpointAttributeReader {
  /** The attribute object last received per endpoint: the same object again = nothing to do. */
  private readonly received = new WeakMap<EndpointState, EndpointAttributes>();
  private readonly warned = new WarnOnce();

  constructor(private readonly typeName: string) {}

  /**
   * Sets `state.attributes` from `attributes` (looked up by each of its addresses, in
   * order; defaults when none). Returns whether its tier placement may have to change
   * (weight, priority or zone changed).
   */
  apply(state: EndpointState, attributes: ReadonlyMap<string, EndpointAttributes> | undefined): boolean {
    let found: EndpointAttributes | undefined;
    if (attributes !== undefined) {
      for (const address of state.addresses) {
        found = attributes.get(address);
        if (found !== undefined) break;
      }
    }
    const received = this.received.get(state);
    if (found === received && received !== undefined) return false;
    if (found === undefined) this.received.delete(state);
    else this.received.set(state, found);
    const next = found === undefined ? DEFAULT_ENDPOINT_ATTRIBUTES : this.valid(state, found);
    const zone = state.zone;
    const moved = next.weight !== state.weight || next.priority !== state.priority;
    state.attributes = next;
    return moved || state.zone !== zone;
  }

  private valid(state: EndpointState, found: EndpointAttributes): EndpointAttributes {
    const weightError = checkWeight(found.weight);
    const priorityError = checkPriority(found.priority);
    if (weightError === undefined && priorityError === undefined) return found;
    for (const error of [weightError, priorityError]) if (error !== undefined) this.warned.warn(`${this.typeName}: endpoint ${state.key}: ${error}; using the default`);
    return {
      weight: weightError === undefined ? found.weight : DEFAULT_ENDPOINT_ATTRIBUTES.weight,
      priority: priorityError === undefined ? found.priority : DEFAULT_ENDPOINT_ATTRIBUTES.priority,
      metadata: found.metadata ?? DEFAULT_ENDPOINT_ATTRIBUTES.metadata,
    };
  }
}
