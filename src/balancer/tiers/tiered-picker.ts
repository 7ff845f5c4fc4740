/**
 * The READY picker shared by every etcd_* policy: priority tiers, the retry
 * skip hook, and call accounting around a per-tier scheduler. It is a thin
 * handle on the balancer's live tiers (`TierView`), so publishing one is O(1).
 * Tier 0 takes all traffic; a pick landing after a change that emptied every
 * tier queues (the next picker is on its way).
 *
 * A retry (`tried`) avoids those addresses while another usable endpoint exists:
 * an untried one of tier 0, else of the next tier (a standby beats the replica
 * that just failed), else tier 0 as usual (reuse beats failing the call). A tier
 * split by tag (tag-split.ts) or zone (zone-split.ts) first chooses the call's
 * leaf; a retry stays within the call's tag and prefers its zone.
 */
import { Metadata, status } from '@grpc/grpc-js';
import { PickResultType, type PickArgs, type Picker, type PickResult } from '../../common/grpc-experimental';
import { steeringOf } from '../call-steering';
import { type TagRoutingConfig } from './tag-split';
import { type Tier, type TierMember, type TierView } from './tier';

/** Read once: grpc-js's enum sits behind a module getter. */
const COMPLETE = PickResultType.COMPLETE;
const QUEUE: PickResult = Object.freeze({ pickResultType: PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null });

export class TieredPicker implements Picker {
  /** Where the last scheduler pick landed (read by `attachHooks` in the same synchronous `pick`). */
  private pickedTier: Tier | undefined;
  private pickedIndex = 0;

  /**
   * @param view The live tiers.
   * @param locate The endpoint an address belongs to (the retry's tried addresses).
   * @param tracksCalls Whether to count picks in each endpoint's `CallLoad`.
   * @param nowMs Clock for call accounting.
   * @param countsPicks Whether started picks are also counted for metrics (each
   *   endpoint's `load.pickTally` is set); implies `tracksCalls`.
   * @param random [0, 1), for the zone draw of zone-split tiers.
   */
  constructor(
    private readonly view: TierView,
    private readonly locate: (address: string) => TierMember | undefined,
    private readonly tracksCalls: boolean,
    private readonly nowMs: () => number,
    private readonly countsPicks = false,
    private readonly random: () => number = Math.random,
    private readonly tagRouting?: TagRouting,
  ) {}

  pick(pickArgs: PickArgs): PickResult {
    const tiers = this.view.active;
    if (tiers.length === 0) return QUEUE;
    const steering = steeringOf(pickArgs.metadata);
    const nowMs = this.tracksCalls ? this.nowMs() : 0;
    const tag = this.tagRouting === undefined ? '' : tagOf(pickArgs.metadata, this.tagRouting.header);
    const endpoint = steering === undefined || steering.tried.size === 0
      ? this.pickInTier(tiers[0], undefined, nowMs, pickArgs.metadata, tag)
      : this.pickAvoiding(tiers, steering.tried, nowMs, pickArgs.metadata, tag);
    if (endpoint === undefined) return this.tagRouting!.unavailable(tag);
    const result = endpoint.child.getPicker().pick(pickArgs);
    if (result.pickResultType !== COMPLETE) return result;
    if (steering !== undefined) steering.lastPicked = result.subchannel?.getAddress() ?? endpoint.addresses[0];
    if (this.tracksCalls) this.attachHooks(result, endpoint, nowMs);
    return result;
  }

  /** A pick in `tier`; undefined when tag routing finds no endpoint the call may use. */
  private pickInTier(tier: Tier, excluded: Uint8Array | undefined, nowMs: number, metadata: Metadata, tag: string): TierMember | undefined {
    const tagged = tier.tags === undefined ? tier : tier.tags.forCall(tag, this.tagRouting!.force);
    if (tagged === undefined) return undefined;
    return this.pickInLeaf(tagged.zones === undefined ? tagged : tagged.zones.choose(this.random), excluded, nowMs, metadata);
  }

  /** A pick in a tier that is not zone-split (or in one zone's tier of one that is). */
  private pickInLeaf(leaf: Tier, excluded: Uint8Array | undefined, nowMs: number, metadata: Metadata): TierMember {
    const index = leaf.scheduler.pick(excluded, nowMs, metadata);
    this.pickedTier = leaf;
    this.pickedIndex = index;
    return leaf.endpoints[index];
  }

  private pickAvoiding(tiers: readonly Tier[], tried: ReadonlySet<string>, nowMs: number, metadata: Metadata, tag: string): TierMember | undefined {
    for (const address of tried) {
      const endpoint = this.locate(address);
      const tier = endpoint?.tier;
      if (tier !== undefined && tier.rank >= 0 && tier.excluded[endpoint!.slot] === 0) {
        tier.excluded[endpoint!.slot] = 1;
        for (let t: Tier | undefined = tier; t !== undefined; t = t.parent) t.excludedCount++;
      }
    }
    let chosen: TierMember | undefined;
    for (let t = 0; t < tiers.length && chosen === undefined; t++) {
      const tier = tiers[t];
      if (tier.excludedCount >= tier.size) continue;
      const tagged = tier.tags === undefined ? tier : tier.tags.forCall(tag, this.tagRouting!.force);
      if (tagged === undefined || tagged.excludedCount >= tagged.size) continue;
      const leaf = tagged.zones === undefined ? tagged : tagged.zones.chooseWithRoom(this.random);
      chosen = this.pickInLeaf(leaf, leaf.excludedCount > 0 ? leaf.excluded : undefined, nowMs, metadata);
    }
    for (const address of tried) {
      const endpoint = this.locate(address);
      const tier = endpoint?.tier;
      if (tier !== undefined) {
        tier.excluded[endpoint!.slot] = 0;
        for (let t: Tier | undefined = tier; t !== undefined; t = t.parent) t.excludedCount = 0;
      }
    }
    return chosen ?? this.pickInTier(tiers[0], undefined, nowMs, metadata, tag);
  }

  private attachHooks(result: PickResult, endpoint: TierMember, nowMs: number): void {
    let onCallStarted = this.countsPicks ? endpoint.load.recordCountedPick(nowMs) : endpoint.load.recordPick(nowMs);
    let onCallEnded = endpoint.load.onCallEnded;
    const scheduler = this.pickedTier!.scheduler;
    if (scheduler.observeCall !== undefined) {
      // The scheduler measures the call (e.g. its latency) and runs the accounting hooks from its own.
      const hooks = scheduler.observeCall(this.pickedIndex, onCallStarted, onCallEnded);
      onCallStarted = hooks.onCallStarted;
      onCallEnded = hooks.onCallEnded;
    }
    const innerStarted = result.onCallStarted;
    const innerEnded = result.onCallEnded;
    // A leaf's pick has no hooks of its own; chain them (allocating) only if some wrapper added hooks.
    result.onCallStarted = innerStarted === null ? onCallStarted : () => { onCallStarted(); innerStarted(); };
    result.onCallEnded = innerEnded === null ? onCallEnded : (code, details, metadata) => {
      onCallEnded(code);
      innerEnded(code, details, metadata);
    };
  }
}

/** The call's tag: the first value of `header` ('' when absent or binary). */
export function tagOf(metadata: Metadata, header: string): string {
  const values = metadata.get(header);
  if (values.length === 0) return '';
  const value = values[0];
  return typeof value === 'string' ? value : '';
}

/** Tag routing as the picker applies it: the config, and the failure of a call no endpoint may take. */
export class TagRouting implements TagRoutingConfig {
  readonly header: string;
  readonly force: boolean;

  constructor(config: TagRoutingConfig, private readonly policy: string) {
    this.header = config.header;
    this.force = config.force;
  }

  /** UNAVAILABLE naming the tag (a wait-for-ready call waits for an endpoint with it instead). */
  unavailable(tag: string): PickResult {
    const details = this.force
      ? `${this.policy}: no usable endpoint tagged '${tag}' (tagRouting.force)`
      : `${this.policy}: no usable endpoint tagged '${tag}' and no untagged one to fall back to`;
    return {
      pickResultType: PickResultType.TRANSIENT_FAILURE,
      subchannel: null,
      status: { code: status.UNAVAILABLE, details, metadata: new Metadata() },
      onCallStarted: null,
      onCallEnded: null,
    };
  }
}
