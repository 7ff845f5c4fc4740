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
 * - re-resolution is requested only when an endpoint's connection goes READY →
 *   not READY (a health flip is not a reason);
 *   the leaves' own requests (one per failed connection attempt of a dead
 *   address) are dropped, so a resolver that answers at once cannot loop.
 * - client-side health checking (gRFC A17) when the config has `healthCheck`:
 *   one grpc.health.v1 Watch per subchannel, and an endpoint is usable only
 *   while READY and healthy (see `EndpointHealthChecks` for the states).
 *   Turning it on or off, or changing its service name, swaps every child for a
 *   new one (the new ones start first, so shared connections stay up).
 * - startup: grpc-js queues the calls made before the channel is READY and picks
 *   them all with the first READY picker, so with one endpoint connected a startup
 *   burst would all land there (round_robin does this). The first READY picker is
 *   held back up to `startupSettleMs` while other endpoints are still connecting.
 * A policy is a `PickStrategy`.
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
import { EndpointHealthChecks } from './health-checks';
import { type EtcdPolicyConfig, type HealthCheckConfig } from './policy-config';
import { TieredPicker, type PickerTier } from './tiered-picker';
import { type PickStrategy, type TierScheduler } from './tier-scheduler';

/** Injection points of a balancer (unit tests; production uses the defaults). */
export interface EndpointPoolOptions extends CallLoadOptions {
  /** Randomness for the schedulers: [0, 1). Defaults to Math.random. */
  random?: () => number;
  /**
   * How long the first READY picker waits for endpoints still connecting, so a
   * startup burst is spread (only once per balancer; loopback connects in ~1-5 ms).
   * Defaults to 100.
   */
  startupSettleMs?: number;
}

export const DEFAULT_STARTUP_SETTLE_MS = 100;

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
  /** Set while the config asks for health checking. */
  private health: EndpointHealthChecks | undefined;
  /** Endpoints with a READY connection (healthy or not): re-resolution and `timesReady` follow these. */
  private readonly connected = new WeakSet<EndpointState>();
  private readonly callLoadOptions: ReturnType<typeof resolveCallLoadOptions>;
  private readonly random: () => number;
  private readonly warned = new Set<string>();
  private readonly diagnosticsRef;
  private readonly startupSettleMs: number;
  /** Until the first READY picker is published: when the settle window ends (set on first READY). */
  private startupSettleUntilMs: number | undefined;
  private startupDone = false;
  private startupTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly helper: ChannelControlHelper,
    private readonly policy: PoolPolicy<C>,
    options: EndpointPoolOptions = {},
  ) {
    this.callLoadOptions = resolveCallLoadOptions(options);
    this.random = options.random ?? Math.random;
    this.startupSettleMs = options.startupSettleMs ?? DEFAULT_STARTUP_SETTLE_MS;
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
    const replaceChildren = this.applyHealthCheck(config.healthCheck);
    const attributes = endpointAttributesFrom(options);
    const previous = this.endpoints;
    const next = new Map<string, EndpointState>();
    const created: EndpointState[] = [];
    this.updatesPaused = true;
    for (const endpoint of endpointList.value) {
      const addresses = endpoint.addresses.map(subchannelAddressToString);
      const key = addresses.join(',');
      if (addresses.length === 0 || next.has(key)) continue;
      let state = replaceChildren ? undefined : previous.get(key);
      if (state === undefined) {
        state = new EndpointState(key, addresses, new CallLoad(this.callLoadOptions));
        const leaf = new LeafLoadBalancer(endpoint, this.childHelper(state), options, resolutionNote);
        state.child = this.health?.wrapChild(leaf) ?? leaf;
        created.push(state);
      }
      state.attributes = this.attributesOf(state, attributes);
      next.set(key, state);
    }
    this.endpoints = next;
    // New children first: a subchannel an old child shares keeps its connection (subchannels are refcounted).
    for (const state of created) state.child.startConnecting();
    for (const [key, state] of previous) if (next.get(key) !== state) state.child.destroy();
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
    clearTimeout(this.startupTimer);
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

  /** Whether the endpoint may be picked: READY, which with health checking on means READY and healthy. */
  protected isUsable(endpoint: EndpointState): boolean {
    return endpoint.state === ConnectivityState.READY;
  }

  /** Creates the subchannel of one of `endpoint`'s addresses, wrapped for health checking when on. */
  protected createSubchannel(endpoint: EndpointState, address: SubchannelAddress, args: ChannelOptions): SubchannelInterface {
    const subchannel = this.helper.createSubchannel(address, args);
    return this.health?.wrapSubchannel(endpoint, subchannel) ?? subchannel;
  }

  /** Re-evaluates tiers and state and publishes a picker. Call after anything that changes usability. */
  protected recompute(): void {
    if (this.updatesPaused || this.destroyed || this.strategy === undefined) return;
    const tiers = this.buildTiers(this.strategy);
    if (tiers.length > 0 && this.holdForStartup()) {
      this.updateState(ConnectivityState.CONNECTING, new QueuePicker(this), null);
    } else if (tiers.length > 0) {
      this.startupDone = true;
      this.updateState(ConnectivityState.READY, new TieredPicker(tiers, this.strategy.tracksCalls, this.callLoadOptions.nowMs), null);
    } else if (this.anyInState(ConnectivityState.CONNECTING)) {
      this.updateState(ConnectivityState.CONNECTING, new QueuePicker(this), null);
    } else if (this.anyInState(ConnectivityState.TRANSIENT_FAILURE) || this.anyInState(ConnectivityState.READY)) {
      // READY but unusable (ejected by outlier_detection) counts as a failure too.
      const problem = this.health !== undefined && this.anyConnected() ? 'no healthy endpoint' : 'no connection established';
      const message = `${this.policy.typeName}: ${problem}. Last error: ${this.lastError}`;
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details: message }), message);
    } else {
      this.updateState(ConnectivityState.IDLE, new QueuePicker(this), null);
    }
    // Keep every endpoint connected, as round_robin does.
    this.exitIdle();
  }

  /** True while the first READY picker should wait for endpoints still connecting. */
  private holdForStartup(): boolean {
    if (this.startupDone || this.startupSettleMs <= 0 || !this.anyInState(ConnectivityState.CONNECTING)) return false;
    const nowMs = this.callLoadOptions.nowMs();
    if (this.startupSettleUntilMs === undefined) {
      this.startupSettleUntilMs = nowMs + this.startupSettleMs;
      this.startupTimer = setTimeout(() => {
        this.startupDone = true;
        this.recompute();
      }, this.startupSettleMs);
      this.startupTimer.unref();
      this.policy.trace(`first endpoint READY; waiting up to ${this.startupSettleMs} ms for the others to connect`);
    }
    return nowMs < this.startupSettleUntilMs;
  }

  private applyConfig(config: C): void {
    this.config = config;
    const key = JSON.stringify(config.toJsonObject());
    if (key === this.strategyKey && this.strategy !== undefined) return;
    this.strategyKey = key;
    this.strategy = this.policy.createStrategy(config, this.random);
    this.schedulers.clear();
  }

  /** Applies `healthCheck`; true when it changed (on/off or service name), so every child must be replaced. */
  private applyHealthCheck(healthCheck: HealthCheckConfig | undefined): boolean {
    const serviceName = healthCheck?.serviceName;
    if (serviceName === this.health?.serviceName) return false;
    this.policy.trace(serviceName === undefined ? 'health checking off' : `health checking on, service '${serviceName}'`);
    this.health = serviceName === undefined ? undefined : new EndpointHealthChecks(serviceName, endpoint => this.onHealthChange(endpoint));
    return true;
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
    if (this.health === undefined) {
      if (errorMessage) this.lastError = errorMessage;
      this.setEndpointState(state, connectivity, connectivity === ConnectivityState.READY);
      return;
    }
    this.health.setReported(state, connectivity);
    // While connected, the child's error is only "picked subchannel is unhealthy": the view says why.
    if (errorMessage && !this.health.view(state).connected) this.lastError = errorMessage;
    this.onHealthChange(state);
  }

  private onHealthChange(state: EndpointState): void {
    if (this.destroyed || this.health === undefined || this.endpoints.get(state.key) !== state) return;
    const view = this.health.view(state);
    if (view.error !== undefined) this.lastError = view.error;
    this.setEndpointState(state, view.connectivity, view.connected);
  }

  private setEndpointState(state: EndpointState, connectivity: ConnectivityState, connected: boolean): void {
    const previous = state.state;
    state.state = connectivity;
    if (previous !== connectivity) this.policy.trace(`${state.key} ${ConnectivityState[previous]} -> ${ConnectivityState[connectivity]}`);
    if (connected && !this.connected.has(state)) {
      this.connected.add(state);
      state.timesReady++;
    } else if (!connected && this.connected.has(state)) {
      this.connected.delete(state);
      this.helper.requestReresolution();
    }
    this.recompute();
  }

  private anyConnected(): boolean {
    for (const state of this.endpoints.values()) if (this.connected.has(state)) return true;
    return false;
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
