/**
 * The READY picker shared by every etcd_* policy: priority tiers, the retry
 * skip hook, and call accounting around a per-tier scheduler.
 *
 * Tiers are in priority order and hold only usable endpoints (see
 * `EndpointPoolBalancer`); tier 0 takes all traffic. With steering (a retry),
 * addresses in `tried` are avoided while another usable endpoint exists:
 * first an untried endpoint of tier 0, else an untried one of the next tier
 * (a standby is a better retry target than the replica that just failed),
 * else tier 0 as usual (reuse beats failing the call). Draining (weight 0)
 * endpoints are in no tier while a positive-weight one is usable, so they are
 * never retry targets then.
 *
 * Per pick without steering: one WeakMap lookup, one scheduler pick, one child
 * pick; the child's result object (fresh per pick) gets our hooks (the call
 * accounting's, or the scheduler's own when it observes calls).
 */
import { PickResultType, type PickArgs, type Picker, type PickResult } from '../grpc-experimental';
import { steeringOf } from './call-steering';
import { type EndpointState } from './endpoint-state';
import { type TierScheduler } from './tier-scheduler';

/** One priority level's usable endpoints and its scheduler. */
export interface PickerTier {
  readonly priority: number;
  readonly endpoints: readonly EndpointState[];
  readonly scheduler: TierScheduler;
}

interface Position {
  readonly tier: number;
  readonly index: number;
}

export class TieredPicker implements Picker {
  /** Per tier, flags of endpoints this pick must avoid; all 0 between picks. */
  private readonly excluded: Uint8Array[];
  private readonly excludedCount: Int32Array;
  private readonly positions = new Map<string, Position>();
  /** Where the last scheduler pick landed (read by `attachHooks` in the same synchronous `pick`). */
  private pickedTier = 0;
  private pickedIndex = 0;

  /**
   * @param tiers Non-empty, each with at least one endpoint.
   * @param tracksCalls Whether to count picks in each endpoint's `CallLoad`.
   * @param nowMs Clock for call accounting.
   */
  constructor(
    private readonly tiers: readonly PickerTier[],
    private readonly tracksCalls: boolean,
    private readonly nowMs: () => number,
  ) {
    this.excluded = tiers.map(t => new Uint8Array(t.endpoints.length));
    this.excludedCount = new Int32Array(tiers.length);
    tiers.forEach((tier, t) => tier.endpoints.forEach((endpoint, index) => {
      for (const address of endpoint.addresses) this.positions.set(address, { tier: t, index });
    }));
  }

  pick(pickArgs: PickArgs): PickResult {
    const steering = steeringOf(pickArgs.metadata);
    const nowMs = this.tracksCalls ? this.nowMs() : 0;
    const endpoint = steering === undefined || steering.tried.size === 0
      ? this.pickInTier(0, undefined, nowMs)
      : this.pickAvoiding(steering.tried, nowMs);
    const result = endpoint.child.getPicker().pick(pickArgs);
    if (result.pickResultType !== PickResultType.COMPLETE) return result;
    if (steering !== undefined) steering.lastPicked = result.subchannel?.getAddress() ?? endpoint.addresses[0];
    if (this.tracksCalls) this.attachHooks(result, endpoint, nowMs);
    return result;
  }

  private pickInTier(t: number, excluded: Uint8Array | undefined, nowMs: number): EndpointState {
    const tier = this.tiers[t];
    const index = tier.scheduler.pick(excluded, nowMs);
    this.pickedTier = t;
    this.pickedIndex = index;
    return tier.endpoints[index];
  }

  private pickAvoiding(tried: ReadonlySet<string>, nowMs: number): EndpointState {
    for (const address of tried) {
      const position = this.positions.get(address);
      if (position !== undefined && this.excluded[position.tier][position.index] === 0) {
        this.excluded[position.tier][position.index] = 1;
        this.excludedCount[position.tier]++;
      }
    }
    let chosen: EndpointState | undefined;
    for (let t = 0; t < this.tiers.length && chosen === undefined; t++) {
      const count = this.excludedCount[t];
      if (count < this.tiers[t].endpoints.length) chosen = this.pickInTier(t, count > 0 ? this.excluded[t] : undefined, nowMs);
    }
    for (const address of tried) {
      const position = this.positions.get(address);
      if (position !== undefined) this.excluded[position.tier][position.index] = 0;
    }
    this.excludedCount.fill(0);
    return chosen ?? this.pickInTier(0, undefined, nowMs);
  }

  private attachHooks(result: PickResult, endpoint: EndpointState, nowMs: number): void {
    let onCallStarted = endpoint.load.recordPick(nowMs);
    let onCallEnded = endpoint.load.onCallEnded;
    const scheduler = this.tiers[this.pickedTier].scheduler;
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
