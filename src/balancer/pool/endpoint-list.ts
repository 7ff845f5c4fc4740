/**
 * The endpoints of a balancer's latest resolution, and the indexes over them:
 * by identity (addresses) and by address (the retry's tried set names addresses).
 *
 * `reconcile` diffs a new resolution against the last one in one pass that is
 * cheap for what did not change: unchanged endpoints keep their place in the
 * list (a change shifts the rest by a few), so the previous list is walked
 * alongside and most endpoints cost one comparison, no lookup. The comparison
 * is by value (host and port of each address), so a resolver that builds new
 * `Endpoint` objects each time pays the same; only an endpoint out of step
 * builds its address strings and looks them up. An endpoint passed as the same
 * `Endpoint` object, with the same attribute map as last time, keeps its
 * attributes unread (the contract of `ENDPOINT_ATTRIBUTES_KEY`); otherwise the
 * owner reads them, by value too.
 */
import { subchannelAddressToString, type Endpoint, type SubchannelAddress } from '../../common/grpc-experimental';
import { type EndpointAttributes } from '../../discovery/endpoint-attributes';
import { type EndpointState } from './endpoint-state';

/** What the balancer does for the list. */
export interface EndpointListOwner {
  /** Makes the state (and child) of an endpoint new to the list. */
  create(key: string, addresses: string[], endpoint: Endpoint): EndpointState;
  /** Reads the endpoint's attributes from the map (new endpoint, new `Endpoint` object, or another map). */
  applyAttributes(state: EndpointState, attributes: ReadonlyMap<string, EndpointAttributes> | undefined): void;
  /** Takes a dropped endpoint out of the balancer's own state (tiers, counters); its child is destroyed later. */
  forget(state: EndpointState): void;
}

export interface Reconciled {
  /** New children, to start (before the old ones go: a shared subchannel keeps its connection). */
  readonly created: readonly EndpointState[];
  /** Dropped, with children to destroy. */
  readonly dropped: readonly EndpointState[];
}

export class EndpointList {
  private readonly byKey = new Map<string, EndpointState>();
  private readonly byAddress = new Map<string, EndpointState>();
  /** The last resolution's endpoints, in its order (each knows its `listing.index`). */
  private last: EndpointState[] = [];
  private lastAttributes: ReadonlyMap<string, EndpointAttributes> | undefined;
  private generation = 0;

  constructor(private readonly owner: EndpointListOwner) {}

  get size(): number {
    return this.byKey.size;
  }

  values(): IterableIterator<EndpointState> {
    return this.byKey.values();
  }

  /** The endpoint that has `address`, if any. */
  locate(address: string): EndpointState | undefined {
    return this.byAddress.get(address);
  }

  /** Whether `state` is still one of this list's endpoints (every state leaves through `forget` or `clear`). */
  holds(state: EndpointState): boolean {
    return !state.forgotten;
  }

  /**
   * Applies a resolution: new endpoints get states (`owner.create`), dropped ones are
   * forgotten; with `replaceAll` every endpoint gets a new state (a new child).
   */
  reconcile(list: readonly Endpoint[], attributes: ReadonlyMap<string, EndpointAttributes> | undefined, replaceAll: boolean): Reconciled {
    const sameAttributeSource = attributes !== undefined && attributes === this.lastAttributes;
    this.lastAttributes = attributes;
    const generation = ++this.generation;
    const previous = this.last;
    const listed = new Array<EndpointState>(list.length);
    const created: EndpointState[] = [];
    const dropped: EndpointState[] = [];
    let kept = 0;
    let cursor = 0;
    for (const endpoint of list) {
      let state: EndpointState | undefined;
      let unchanged = false;
      const candidate = cursor < previous.length ? previous[cursor] : undefined;
      if (!replaceAll && candidate !== undefined && !candidate.forgotten && sameEndpoint(candidate.listing.endpoint!, endpoint)) {
        state = candidate;
        cursor++;
        unchanged = candidate.listing.endpoint === endpoint;
      } else {
        const addresses = endpoint.addresses.map(subchannelAddressToString);
        if (addresses.length === 0) continue;
        const key = addresses.join(',');
        state = this.byKey.get(key);
        if (state !== undefined && replaceAll && state.listing.generation !== generation) {
          dropped.push(state);
          this.forget(state);
          state = undefined;
        }
        // Back in step with the previous list after an insertion or removal.
        if (state !== undefined && state.listing.generation !== generation && previous[state.listing.index] === state && state.listing.index >= cursor) cursor = state.listing.index + 1;
        if (state === undefined) {
          state = this.owner.create(key, addresses, endpoint);
          this.byKey.set(key, state);
          for (const address of addresses) this.byAddress.set(address, state);
          created.push(state);
        }
      }
      if (state.listing.generation === generation) continue; // the same endpoint twice in one list
      // A resolver with a new map each time never relies on the object's identity: the equal old
      // object stays listed and the new one dies young (promoting 10,000 of them per update costs GC).
      state.listed(generation, kept, unchanged || !sameAttributeSource ? state.listing.endpoint ?? endpoint : endpoint);
      listed[kept++] = state;
      if (!unchanged || !sameAttributeSource) this.owner.applyAttributes(state, attributes);
    }
    listed.length = kept;
    this.last = listed;
    if (kept !== this.byKey.size) {
      const gone: EndpointState[] = [];
      for (const state of this.byKey.values()) if (state.listing.generation !== generation) gone.push(state);
      for (const state of gone) this.forget(state);
      dropped.push(...gone);
    }
    return { created, dropped };
  }

  /** Forgets everything (the balancer destroys the children). */
  clear(): void {
    for (const state of this.byKey.values()) state.forget();
    this.byKey.clear();
    this.byAddress.clear();
    this.last = [];
  }

  private forget(state: EndpointState): void {
    state.forget();
    if (this.byKey.get(state.key) === state) this.byKey.delete(state.key);
    for (const address of state.addresses) if (this.byAddress.get(address) === state) this.byAddress.delete(address);
    this.owner.forget(state);
  }
}

/** Whether two endpoints have the same addresses, in order: property reads, no strings built. */
function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  if (a === b) return true;
  const x = a.addresses;
  const y = b.addresses;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (!sameAddress(x[i], y[i])) return false;
  return true;
}

function sameAddress(a: SubchannelAddress, b: SubchannelAddress): boolean {
  if ('path' in a || 'path' in b) return 'path' in a && 'path' in b && a.path === b.path;
  return a.host === b.host && a.port === b.port;
}
