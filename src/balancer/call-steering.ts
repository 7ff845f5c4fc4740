/**
 * The skip hook between the retry interceptor and our pickers.
 *
 * The carrier is the call's `MetadataOptions` object: grpc-js copies that object
 * *by reference* through every `Metadata.clone()` down to `PickArgs.metadata`, and
 * never puts it on the wire. So steering reaches our pickers and can never reach a
 * server, whatever LB policy the channel uses. (A metadata header would leak to
 * servers under grpc-js's own policies, which do not strip it.)
 */
import { type Metadata } from '@grpc/grpc-js';

/** Per-call state shared by the retry interceptor (writer of `tried`) and pickers (writer of `lastPicked`). */
export interface CallSteering {
  /** Addresses (`host:port` / `[v6]:port`) this call already tried; pickers avoid them while another is ready. */
  readonly tried: Set<string>;
  /** Address of the latest pick for this call, set by our pickers. */
  lastPicked: string | undefined;
}

const steeringByOptions = new WeakMap<object, CallSteering>();

/**
 * Gives `metadata` a fresh options object (a copy of its current options) and
 * attaches new steering state to it. Call once per logical call, before the
 * first attempt starts.
 */
export function attachSteering(metadata: Metadata): CallSteering {
  const options = { ...metadata.getOptions() };
  metadata.setOptions(options);
  const steering: CallSteering = { tried: new Set(), lastPicked: undefined };
  steeringByOptions.set(options, steering);
  return steering;
}

/** The steering state of the call whose (cloned) metadata this is, if any. O(1), no allocation. */
export function steeringOf(metadata: Metadata): CallSteering | undefined {
  return steeringByOptions.get(metadata.getOptions());
}
