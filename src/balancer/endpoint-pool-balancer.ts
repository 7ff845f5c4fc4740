/**
 * The layer every etcd_* policy shares. Connection handling is grpc-js
 * `round_robin`'s: one `LeafLoadBalancer` per endpoint (connect, reconnect with
 * backoff, IDLE → connect again), all endpoints kept connected, standbys too,
 * so failover costs no handshake. On top of it:
 * - endpoints are kept across resolutions by address, attributes updated in
 *   place: a weight or priority change re-balances without reconnecting;
 * - priority tiers: all traffic to the lowest priority with a usable (READY)
 *   endpoint of positive weight, failover/failback on connectivity changes.
 *   Weight 0 = draining: no new calls while any positive-weight endpoint is
 *   usable, in its tier or a standby tier (an all-draining primary tier hands
 *   over to the standby). Only when every usable endpoint drains do they share
 *   the traffic equally, lowest priority first: draining beats failing;
 * - none usable: QueuePicker while any endpoint connects, UnavailablePicker
 *   with the last error in TRANSIENT_FAILURE, as round_robin does;
 * - re-resolution is requested only when an endpoint goes READY → not READY;
 *   the leaves' own requests (one per failed connection attempt of a dead
 *   address) are dropped, so a resolver that answers at once cannot loop.
 * A policy is a `PickStrategy`; `isUsable` and `createSubchannel` are the seams
 * for client-side health checking.
 */
import { connectivityState as ConnectivityState, type ChannelOptions } from '@grpc/grpc-js';
import {
  createChildChannelControlHelper, LeafLoadBalancer, log, logVerbosity, QueuePicker, subchannelAddressToString, UnavailablePicker,
  type ChannelControlHelper, type Endpoint, type LoadBalancer, type Picker, type StatusOr, type SubchannelAddress,
  type SubchannelInterface, type TypedLoadBalancingConfig,
} from '../grpc-experimental';
import { checkPriority, checkWeight } from '../etcd/endpoint-codec';
import { trackBalancer, untrackBalancer, type BalancerSnapshot } from './balancer-diagnostics';
import { CallLoad, resolveCallLoadOptions, type CallLoadOptions } from './call-load';
import { DEFAULT_ENDPOINT_ATTRIBUTES, endpointAttributesFrom, type EndpointAttributes } from './endpoint-attributes';
import { EndpointState } from './endpoint-state';
import { type EtcdPolicyConfig } from './policy-config';
import { TieredPicker, type PickerTier } from './tiered-picker';
import { type PickStrategy, type TierScheduler } from './tier-scheduler';

/** Injection points of a balancer (unit tests; production uses the defaults). */
export interface EndpointPoolOptions extends CallLoadOptions {
  /** Randomness for the schedulers: [0, 1). Defaults to Math.random. */
  random?: () => number;
}

/** What a policy plugs into the shared layer. */
export interface PoolPolicy<C extends EtcdPolicyConfig> {
  readonly typeName: string;
  readonly trace: (text: string) => void;
  isConfig(config: TypedLoadBalancingConfig): config is C;
  createStrategy(config: C, random: () => number): PickStrategy;
}

/** Bad attribute warnings remembered (each printed once), bounded. */
const MAX_WARNINGS_REMEMBERED = 1000;

export class EndpointPoolBalancer<C extends EtcdPolicyConfig> implements LoadBalancer {
  private endpoints = new Map<string, EndpointState>();
  private currentState = ConnectivityState.IDLE;
  private lastError: string | null = null;
  private updatesPaused = false;
  private destroyed = false;
  private config: C | undefined;
  private strategy: PickStrategy | undefined;
  private strategyKey = '';
  private schedulers = new Map<number, { signature: string; scheduler: TierScheduler }>();
  private readonly callLoadOptions: ReturnType<typeof resolveCallLoadOptions>;
  private readonly random: () => number;
  private readonly warned = new Set<string>();
  private readonly diagnosticsRef;

  constructor(
    private readonly helper: ChannelControlHelper,
    private readonly policy: PoolPolicy<C>,
    options: EndpointPoolOptions = {},
  ) {
    this.callLoadOptions = resolveCallLoadOptions(options);
    this.random = options.random ?? Math.random;
    this.diagnosticsRef = trackBalancer(this);
  }

  /** The latest config (its `healthCheck` is for client-side health checking). */
  getConfig(): C | undefined {
    return this.config;
  }

  updateAddressList(endpointList: StatusOr<Endpoint[]>, config: TypedLoadBalancingConfig, options: ChannelOptions, resolutionNote: string): boolean {
    if (!this.policy.isConfig(config) || this.destroyed) return false;
    this.applyConfig(config);
    if (!endpointList.ok) {
      if (this.endpoints.size === 0) this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker(endpointList.error), endpointList.error.details);
      return true;
    }
    const attributes = endpointAttributesFrom(options);
    const previous = this.endpoints;
    const next = new Map<string, EndpointState>();
    const created: EndpointState[] = [];
    this.updatesPaused = true;
    for (const endpoint of endpointList.value) {
      const addresses = endpoint.addresses.map(subchannelAddressToString);
      const key = addresses.join(',');
      if (addresses.length === 0 || next.has(key)) continue;
      let state = previous.get(key);
      if (state === undefined) {
        state = new EndpointState(key, addresses, new CallLoad(this.callLoadOptions));
        state.child = new LeafLoadBalancer(endpoint, this.childHelper(state), options, resolutionNote);
        created.push(state);
      }
      state.attributes = this.attributesOf(state, attributes);
      next.set(key, state);
    }
    this.endpoints = next;
    for (const [key, state] of previous) if (!next.has(key)) state.child.destroy();
    for (const state of created) state.child.startConnecting();
    this.updatesPaused = false;
    this.policy.trace(`endpoints [${[...next.values()].map(e => `${e.key} w=${e.weight} p=${e.priority}`).join(', ')}]`);
    if (next.size === 0) {
      // Accepted (as round_robin does): an empty service is a state, and calls should fail fast with
      // this message. Returning false would leave calls waiting for name resolution until their deadline.
      const message = `${this.policy.typeName}: no addresses resolved. Resolution note: ${resolutionNote}`;
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message }), message);
      return true;
    }
    this.recompute();
    return true;
  }

  exitIdle(): void {
    for (const state of this.endpoints.values()) if (state.state === ConnectivityState.IDLE) state.child.exitIdle();
  }

  resetBackoff(): void {
    // Backoff lives in the subchannels; the leaves have none to reset.
  }

  destroy(): void {
    this.destroyed = true;
    for (const state of this.endpoints.values()) state.child.destroy();
    this.endpoints.clear();
    this.schedulers.clear();
    untrackBalancer(this.diagnosticsRef);
  }

  getTypeName(): string {
    return this.policy.typeName;
  }

  snapshot(): BalancerSnapshot {
    const nowMs = this.callLoadOptions.nowMs();
    return {
      policy: this.policy.typeName,
      state: ConnectivityState[this.currentState],
      endpoints: [...this.endpoints.values()].map(e => ({
        address: e.addresses[0],
        endpointId: e.id,
        weight: e.weight,
        priority: e.priority,
        state: ConnectivityState[e.state],
        timesReady: e.timesReady,
        activeCalls: e.load.active,
        pendingPicks: e.load.pending(nowMs),
        failurePenalty: e.load.failurePenalty(nowMs),
      })),
    };
  }

  /** Whether the endpoint may be picked. Health checking narrows this. */
  protected isUsable(endpoint: EndpointState): boolean {
    return endpoint.state === ConnectivityState.READY;
  }

  /** Creates the subchannel of one of `endpoint`'s addresses. Health checking wraps it. */
  protected createSubchannel(_endpoint: EndpointState, address: SubchannelAddress, args: ChannelOptions): SubchannelInterface {
    return this.helper.createSubchannel(address, args);
  }

  /** Re-evaluates tiers and state and publishes a picker. Call after anything that changes usability. */
  protected recompute(): void {
    if (this.updatesPaused || this.destroyed || this.strategy === undefined) return;
    const tiers = this.buildTiers(this.strategy);
    if (tiers.length > 0) {
      this.updateState(ConnectivityState.READY, new TieredPicker(tiers, this.strategy.tracksCalls, this.callLoadOptions.nowMs), null);
    } else if (this.anyInState(ConnectivityState.CONNECTING)) {
      this.updateState(ConnectivityState.CONNECTING, new QueuePicker(this), null);
    } else if (this.anyInState(ConnectivityState.TRANSIENT_FAILURE) || this.anyInState(ConnectivityState.READY)) {
      // READY but unusable (unhealthy) counts as a failure too.
      const message = `${this.policy.typeName}: no connection established. Last error: ${this.lastError}`;
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message }), message);
    } else {
      this.updateState(ConnectivityState.IDLE, new QueuePicker(this), null);
    }
    // Keep every endpoint connected, as round_robin does.
    this.exitIdle();
  }

  private applyConfig(config: C): void {
    this.config = config;
    const key = JSON.stringify(config.toJsonObject());
    if (key === this.strategyKey && this.strategy !== undefined) return;
    this.strategyKey = key;
    this.strategy = this.policy.createStrategy(config, this.random);
    this.schedulers.clear();
  }

  private childHelper(state: EndpointState): ChannelControlHelper {
    return createChildChannelControlHelper(this.helper, {
      updateState: (connectivity, _picker: Picker, errorMessage) => this.onChildState(state, connectivity, errorMessage),
      requestReresolution: () => {},
      createSubchannel: (address, args) => this.createSubchannel(state, address, args),
    });
  }

  private onChildState(state: EndpointState, connectivity: ConnectivityState, errorMessage: string | null): void {
    if (this.destroyed || this.endpoints.get(state.key) !== state) return;
    const previous = state.state;
    state.state = connectivity;
    if (connectivity === ConnectivityState.READY && previous !== ConnectivityState.READY) state.timesReady++;
    if (previous !== connectivity) this.policy.trace(`${state.key} ${ConnectivityState[previous]} -> ${ConnectivityState[connectivity]}`);
    if (errorMessage) this.lastError = errorMessage;
    if (previous === ConnectivityState.READY && connectivity !== ConnectivityState.READY) this.helper.requestReresolution();
    this.recompute();
  }

  private attributesOf(state: EndpointState, attributes: ReadonlyMap<string, EndpointAttributes> | undefined): EndpointAttributes {
    if (attributes === undefined) return DEFAULT_ENDPOINT_ATTRIBUTES;
    let found: EndpointAttributes | undefined;
    for (const address of state.addresses) {
      found = attributes.get(address);
      if (found !== undefined) break;
    }
    if (found === undefined) return DEFAULT_ENDPOINT_ATTRIBUTES;
    const weightError = checkWeight(found.weight);
    const priorityError = checkPriority(found.priority);
    if (weightError === undefined && priorityError === undefined) return found;
    // A resolver bug must not take an endpoint out: keep it with the default for the bad field.
    for (const error of [weightError, priorityError]) if (error !== undefined) this.warnOnce(`${this.policy.typeName}: endpoint ${state.key}: ${error}; using the default`);
    return {
      weight: weightError === undefined ? found.weight : DEFAULT_ENDPOINT_ATTRIBUTES.weight,
      priority: priorityError === undefined ? found.priority : DEFAULT_ENDPOINT_ATTRIBUTES.priority,
      metadata: found.metadata ?? DEFAULT_ENDPOINT_ATTRIBUTES.metadata,
    };
  }

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    if (this.warned.size >= MAX_WARNINGS_REMEMBERED) this.warned.clear();
    this.warned.add(message);
    log(logVerbosity.ERROR, message);
  }

  private anyInState(connectivity: ConnectivityState): boolean {
    for (const state of this.endpoints.values()) if (state.state === connectivity) return true;
    return false;
  }

  private buildTiers(strategy: PickStrategy): PickerTier[] {
    const byPriority = new Map<number, EndpointState[]>();
    for (const state of this.endpoints.values()) {
      if (!this.isUsable(state)) continue;
      const tier = byPriority.get(state.priority);
      if (tier === undefined) byPriority.set(state.priority, [state]);
      else tier.push(state);
    }
    const priorities = [...byPriority.keys()].sort((a, b) => a - b);
    const schedulers = new Map<number, { signature: string; scheduler: TierScheduler }>();
    const tiers: PickerTier[] = [];
    for (const priority of priorities) {
      const serving = byPriority.get(priority)!.filter(e => e.weight > 0);
      if (serving.length > 0) tiers.push(this.tier(strategy, priority, serving, serving.map(e => e.weight), schedulers));
    }
    if (tiers.length === 0) {
      for (const priority of priorities) {
        const draining = byPriority.get(priority)!;
        tiers.push(this.tier(strategy, priority, draining, draining.map(() => 1), schedulers));
      }
    }
    this.schedulers = schedulers;
    return tiers;
  }

  /** A tier, reusing the previous scheduler when its endpoints and weights are unchanged (keeps WRR's schedule exact). */
  private tier(strategy: PickStrategy, priority: number, endpoints: EndpointState[], weights: number[], into: Map<number, { signature: string; scheduler: TierScheduler }>): PickerTier {
    const signature = endpoints.map((e, i) => `${e.id}:${weights[i]}`).join(',');
    const cached = this.schedulers.get(priority);
    const scheduler = cached !== undefined && cached.signature === signature ? cached.scheduler : strategy.createScheduler(endpoints, weights);
    into.set(priority, { signature, scheduler });
    return { priority, endpoints, scheduler };
  }

  private updateState(connectivity: ConnectivityState, picker: Picker, errorMessage: string | null): void {
    if (connectivity !== this.currentState) this.policy.trace(`${ConnectivityState[this.currentState]} -> ${ConnectivityState[connectivity]}`);
    this.currentState = connectivity;
    this.helper.updateState(connectivity, picker, errorMessage);
  }
}
