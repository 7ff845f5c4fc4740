/**
 * Reads an endpoint's attributes (weight, priority, metadata) from the map the
 * resolver delivers, and validates them: a bad value is a resolver bug, so the
 * endpoint stays, with the default for the bad field and one warning.
 *
 * Compared by value, not by object: a resolver that builds every attribute
 * object anew (dns, third-party backends) costs two checks and a store per
 * unchanged endpoint, and only a changed weight, priority, zone or tag moves it.
 */
import { WarnOnce } from '../../common/warn-once';
import { checkPriority, checkWeight } from '../../discovery/endpoint-record';
import { DEFAULT_ENDPOINT_ATTRIBUTES, type EndpointAttributes } from '../../discovery/endpoint-attributes';
import { type EndpointState } from './endpoint-state';

/** One balancer's attribute reading; warnings name the policy. */
export class EndpointAttributeReader {
  private readonly warned = new WarnOnce();

  constructor(private readonly typeName: string) {}

  /**
   * Sets `state.attributes` from `attributes` (looked up by each of its addresses, in
   * order; defaults when none). Returns whether its tier placement may have to change
   * (weight, priority, zone or tag changed).
   */
  apply(state: EndpointState, attributes: ReadonlyMap<string, EndpointAttributes> | undefined): boolean {
    let found: EndpointAttributes | undefined;
    if (attributes !== undefined) {
      const addresses = state.addresses;
      for (let i = 0; i < addresses.length && found === undefined; i++) found = attributes.get(addresses[i]);
    }
    const current = state.attributes;
    if (found === current) return false;
    // Equal by value: the object the state has stays (the resolver's new one can die young).
    if (found !== undefined && found.weight === current.weight && found.priority === current.priority && sameMetadata(found.metadata, current.metadata)) return false;
    const next = found === undefined ? DEFAULT_ENDPOINT_ATTRIBUTES : this.valid(state, found);
    const moved = next.weight !== state.weight || next.priority !== state.priority;
    const zone = state.zone;
    const tag = state.tag;
    state.attributes = next;
    return moved || state.zone !== zone || state.tag !== tag;
  }

  private valid(state: EndpointState, found: EndpointAttributes): EndpointAttributes {
    const weightError = checkWeight(found.weight);
    const priorityError = checkPriority(found.priority);
    if (weightError === undefined && priorityError === undefined && found.metadata !== undefined) return found;
    for (const error of [weightError, priorityError]) if (error !== undefined) this.warned.warn(`${this.typeName}: endpoint ${state.key}: ${error}; using the default`);
    return {
      weight: weightError === undefined ? found.weight : DEFAULT_ENDPOINT_ATTRIBUTES.weight,
      priority: priorityError === undefined ? found.priority : DEFAULT_ENDPOINT_ATTRIBUTES.priority,
      metadata: found.metadata ?? DEFAULT_ENDPOINT_ATTRIBUTES.metadata,
    };
  }
}

/** Shallow equality (registration metadata is a few flat fields); a nested value compares by reference. */
function sameMetadata(a: Readonly<Record<string, unknown>> | undefined, b: Readonly<Record<string, unknown>>): boolean {
  if (a === b) return true;
  if (a === undefined) return false;
  let count = 0;
  for (const key in a) {
    if (a[key] !== b[key]) return false;
    count++;
  }
  for (const key in b) if (--count < 0 || !(key in a)) return false;
  return count === 0;
}
