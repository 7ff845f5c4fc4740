/**
 * An in-process `ClientRegistrySource` for zone-routing tests: the test sets the calling
 * fleet's view; subscribers hear of it asynchronously, as the contract says.
 */
import { CLIENT_REGISTRY_SOURCE_KEY, type ClientRegistrySource, type ClientRegistrySubscription, type ClientRegistryView } from '../../../src/discovery/client-registry-source';

export interface TestFleet extends ClientRegistrySource {
  /** Live subscriptions (not released). */
  readonly subscribers: number;
  /** The channel attributes that carry this source. */
  readonly attributes: Record<string, unknown>;
  /** Publishes a view with `zoneCounts` (clientCount = their sum; selfIndex 0). */
  set(zoneCounts: Record<string, number>): void;
}

export function fleetView(zoneCounts: Record<string, number>): ClientRegistryView {
  const counts = new Map(Object.entries(zoneCounts));
  let total = 0;
  for (const n of counts.values()) total += n;
  return { selfIndex: 0, clientCount: total, zoneCounts: counts };
}

/** A source that has answered with `initial`, or not yet (undefined). */
export function testFleet(initial?: Record<string, number>): TestFleet {
  let view = initial === undefined ? undefined : fleetView(initial);
  const listeners = new Set<(view: ClientRegistryView) => void>();
  const source: TestFleet = {
    get subscribers() { return listeners.size; },
    get attributes() { return { [CLIENT_REGISTRY_SOURCE_KEY]: source }; },
    subscribe(onChange): ClientRegistrySubscription {
      listeners.add(onChange);
      return {
        get view() { return view; },
        release() { listeners.delete(onChange); },
      };
    },
    set(zoneCounts) {
      const next = fleetView(zoneCounts);
      view = next;
      setImmediate(() => { for (const listener of listeners) listener(next); });
    },
  };
  return source;
}
