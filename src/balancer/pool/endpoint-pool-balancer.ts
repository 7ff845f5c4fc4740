/**
 * The layer every etcd_* policy shares; a policy is a `PickStrategy` plugged in
 * through `PoolPolicy`. Connection handling is grpc-js `round_robin`'s: one
 * `LeafLoadBalancer` per endpoint, all kept connected (standbys too, so failover
 * costs no handshake). On top of it: endpoints kept across resolutions by address,
 * attributes updated in place (a weight change never reconnects); priority tiers
 * (weight 0 = draining, used only when every usable endpoint drains); the channel
 * state as round_robin decides it (`decideChannelState`); re-resolution only on a
 * READY → not READY change; optional health checking (gRFC A17), the startup hold,
 * slow start and zone-aware routing.
 *
 * Cost per event is O(changed): a connectivity, health or attribute change moves
 * one endpoint between tiers. Every change in a tick publishes one picker.
 */
import { connectivityState as ConnectivityState, type ChannelOptions, type StatusObject } from '@grpc/grpc-js';
import {
  createChildChannelControlHelper, LeafLoadBalancer, QueuePicker, UnavailablePicker,
  type ChannelControlHelper, type Endpoint, type LoadBalancer, type Picker, type StatusOr, type SubchannelAddress,
  type SubchannelInterface, type TypedLoadBalancingConfig,
} from '../../common/grpc-experimental';
import { clientRegistrySourceFrom } from '../../discovery/client-registry-source';
import { type BalancerMetrics } from '../../metrics/balancer-metrics';
import { currentMetrics } from '../../metrics/metrics-binding';
import { snapshotEndpoint, trackBalancer, untrackBalancer } from './balancer-diagnostics';
import { type BalancerSnapshot } from './balancer-snapshot';
import { CallLoad, resolveCallLoadOptions } from './call-load';
import { decideChannelState } from './channel-state';
import { endpointAttributesFrom, type EndpointAttributes } from '../../discovery/endpoint-attributes';
import { EndpointAttributeReader } from './endpoint-attribute-reader';
import { EndpointList } from './endpoint-list';
import { EndpointState } from './endpoint-state';
import { EndpointConnectivity } from './endpoint-connectivity';
import { SlowStartTracker } from './slow-start';
import { StartupSettle } from './startup-settle';
import { type EtcdPolicyConfig } from '../policies/policy-config';
import { DEFAULT_STARTUP_SETTLE_MS, type EndpointPoolOptions, type PoolPolicy } from './pool-policy';
import { TieredPicker } from '../tiers/tiered-picker';
import { type PickStrategy } from '../schedulers/pick-strategy';
import { TierPlacement } from './tier-placement';

/** The shared endpoint layer, driven by one policy's `PickStrategy`. */
export class EndpointPoolBalancer<C extends EtcdPolicyConfig> implements LoadBalancer {
  private readonly endpoints = new EndpointList({
    create: (key, addresses, endpoint) => this.createEndpoint(key, addresses, endpoint),
    applyAttributes: (state, attributes) => this.applyAttributes(state, attributes),
    forget: state => this.forget(state),
  });
  /** Options and note of the latest resolution (a new child is created with them). */
  private childOptions: ChannelOptions = {};
  private readonly connectivity: EndpointConnectivity;
  private currentState = ConnectivityState.IDLE;
  /** The resolver's error, while it has given no endpoints. */
  private resolutionError: StatusObject | undefined;
  private resolutionNote = '';
  private destroyed = false;
  private config: C | undefined;
  private strategy: PickStrategy | undefined;
  private strategyKey = '';
  private readonly placement: TierPlacement;
  private publishPending: NodeJS.Immediate | undefined;
  private readonly callLoadOptions: ReturnType<typeof resolveCallLoadOptions>;
  private readonly random: () => number;
  private readonly attributeReader: EndpointAttributeReader;
  private readonly diagnosticsRef;
  private readonly startup: StartupSettle;
  private readonly locate = (address: string): EndpointState | undefined => this.endpoints.locate(address);
  /** Set when a MeterProvider was installed before this balancer (the channel) was created. */
  private readonly metrics: BalancerMetrics | undefined;
  /** Priority of the tier taking the traffic in the last READY picker (failover counting). */
  private servingPriority: number | undefined;
  /** Set after the first resolution with endpoints: endpoints created later warm up (slow start). */
  private resolvedOnce = false;
  private readonly slowStart: SlowStartTracker;

  constructor(
    private readonly helper: ChannelControlHelper,
    private readonly policy: PoolPolicy<C>,
    options: EndpointPoolOptions = {},
  ) {
    this.callLoadOptions = resolveCallLoadOptions(options);
    this.random = options.random ?? Math.random;
    this.attributeReader = new EndpointAttributeReader(policy.typeName);
    const settleMs = options.startupSettleMs ?? DEFAULT_STARTUP_SETTLE_MS;
    this.startup = new StartupSettle(settleMs, this.callLoadOptions.nowMs, () => this.schedulePublish(), () => {
      this.policy.trace(`first endpoint READY; waiting up to ${settleMs} ms for the others to connect`);
    });
    this.slowStart = new SlowStartTracker(this.callLoadOptions.nowMs, state => this.placement.reweigh(state));
    this.diagnosticsRef = trackBalancer(this);
    this.metrics = currentMetrics()?.balancer.track(policy.typeName, {
      forEachTier: visit => this.placement.tiers?.forEachGroup(visit),
      forEachEndpoint: visit => {
        for (const e of this.endpoints.values()) visit(e.addresses[0], e.load.active, this.strategy?.latencyEstimateMs?.(e));
      },
    });
    const metrics = this.metrics;
    this.placement = new TierPlacement(policy, metrics, () => this.endpoints.values(), () => this.schedulePublish());
    this.connectivity = new EndpointConnectivity({
      trace: this.policy.trace,
      holds: state => !this.destroyed && this.endpoints.holds(state),
      usableChanged: (state, usable) => {
        state.usable = usable;
        if (usable) this.slowStart.becameUsable(state);
        else this.slowStart.becameUnusable(state);
        this.placement.place(state);
      },
      healthKnownChanged: state => this.placement.place(state),
      connectionLost: () => this.helper.requestReresolution(),
      changed: () => this.schedulePublish(),
      healthFlipped: metrics === undefined ? undefined : healthy => metrics.healthChanged(healthy),
    });
  }

  /** The latest config (its `healthCheck` is for client-side health checking). */
  getConfig(): C | undefined {
    return this.config;
  }

  updateAddressList(endpointList: StatusOr<Endpoint[]>, config: TypedLoadBalancingConfig, options: ChannelOptions, resolutionNote: string): boolean {
    if (!this.policy.isConfig(config) || this.destroyed) return false;
    this.applyConfig(config);
    this.placement.zoning?.follow(clientRegistrySourceFrom(options));
    if (!endpointList.ok) {
      // Ignored while endpoints remain (the last good list keeps serving); shown when there are none.
      this.resolutionError = endpointList.error;
      this.publishNow();
      return true;
    }
    this.resolutionError = undefined;
    this.resolutionNote = resolutionNote;
    this.childOptions = options;
    const replaceChildren = this.connectivity.applyHealthCheck(config.healthCheck);
    const { created, dropped } = this.endpoints.reconcile(endpointList.value, endpointAttributesFrom(options), replaceChildren);
    if (this.endpoints.size > 0) this.resolvedOnce = true;
    // New children first: a subchannel an old child shares keeps its connection (subchannels are refcounted).
    for (const state of created) state.child.startConnecting();
    for (const state of dropped) state.child.destroy();
    if (this.policy.trace.enabled) {
      this.policy.trace(`endpoints [${[...this.endpoints.values()].map(e => `${e.key} w=${e.weight} p=${e.priority}`).join(', ')}]`);
    }
    // A resolution is already a batch (our resolver coalesces): publish at once, as grpc-js's policies do.
    this.publishNow();
    return true;
  }

  exitIdle(): void {
    if (this.connectivity.count(ConnectivityState.IDLE) === 0) return;
    for (const state of this.endpoints.values()) if (state.state === ConnectivityState.IDLE) state.child.exitIdle();
  }

  resetBackoff(): void {
    // Backoff lives in the subchannels; the leaves have none to reset.
  }

  destroy(): void {
    this.destroyed = true;
    this.startup.destroy();
    this.slowStart.destroy();
    if (this.publishPending !== undefined) clearImmediate(this.publishPending);
    this.publishPending = undefined;
    for (const state of this.endpoints.values()) state.child.destroy();
    this.endpoints.clear();
    this.placement.clear();
    untrackBalancer(this.diagnosticsRef);
    this.metrics?.close();
  }

  getTypeName(): string {
    return this.policy.typeName;
  }

  snapshot(): BalancerSnapshot {
    const nowMs = this.callLoadOptions.nowMs();
    const zoneRouting = this.placement.zoneSnapshot();
    return {
      policy: this.policy.typeName,
      state: ConnectivityState[this.currentState],
      endpoints: [...this.endpoints.values()].map(e => snapshotEndpoint(e, this.connectivity.health, this.strategy, nowMs)),
      panic: this.placement.anyPanic,
      ...(zoneRouting === undefined ? {} : { zoneRouting }),
    };
  }

  /** Creates the subchannel of one of `endpoint`'s addresses, wrapped for health checking when on. */
  private createSubchannel(endpoint: EndpointState, address: SubchannelAddress, args: ChannelOptions): SubchannelInterface {
    return this.connectivity.wrapSubchannel(endpoint, this.helper.createSubchannel(address, args));
  }

  /** Publishes once for everything that changes in this tick (a burst of events is one picker). */
  private schedulePublish(): void {
    if (this.publishPending !== undefined || this.destroyed) return;
    this.publishPending = setImmediate(() => {
      this.publishPending = undefined;
      this.publish();
    });
  }

  /** Publishes now, and drops a publication scheduled for this tick (it would say the same). */
  private publishNow(): void {
    if (this.publishPending !== undefined) clearImmediate(this.publishPending);
    this.publishPending = undefined;
    this.publish();
  }

  /** Decides the channel state from the counters and the live tiers (`decideChannelState`), and publishes: O(p) for p priorities. */
  private publish(): void {
    const tiers = this.placement.tiers;
    if (this.destroyed || tiers === undefined) return;
    const c = this.connectivity;
    const decision = decideChannelState({
      endpoints: this.endpoints.size, usable: tiers.active.length > 0,
      connecting: c.count(ConnectivityState.CONNECTING), failed: c.count(ConnectivityState.TRANSIENT_FAILURE),
      ready: c.count(ConnectivityState.READY), connected: c.connected, healthChecking: c.health !== undefined, lastError: c.lastError,
    }, connecting => this.startup.hold(connecting), this.policy.typeName, this.resolutionError, this.resolutionNote);
    if (decision.kind === 'queue') {
      this.updateState(decision.state, new QueuePicker(this), null);
    } else if (decision.kind === 'fail') {
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker(decision.status), decision.status.details);
    } else {
      this.startup.finish();
      this.countFailover(tiers.active[0].priority);
      const counting = this.metrics !== undefined;
      const picker = new TieredPicker(tiers, this.locate, this.strategy!.tracksCalls || counting, this.callLoadOptions.nowMs, counting, this.random, this.placement.tagRouting);
      this.updateState(ConnectivityState.READY, picker, null);
    }
  }

  /** Counts a change of the priority taking the traffic (metrics on). */
  private countFailover(priority: number): void {
    const previous = this.servingPriority;
    this.servingPriority = priority;
    if (this.metrics !== undefined && previous !== undefined && priority !== previous) this.metrics.tierChanged(priority > previous);
  }

  /** Applies the config; a new strategy (another config) gets new tiers, every usable endpoint placed again. */
  private applyConfig(config: C): void {
    this.config = config;
    this.slowStart.configure(config.slowStart);
    const zoningChanged = this.placement.applyLocality();
    const key = config.strategyKey();
    if (key === this.strategyKey && this.strategy !== undefined && !zoningChanged) return;
    this.strategyKey = key;
    const strategy = this.policy.createStrategy(config, this.random);
    this.strategy = strategy;
    this.placement.rebuild(config, () => strategy.createScheduler([], []));
  }

  /** A new endpoint's state and child (the list indexes it). */
  private createEndpoint(key: string, addresses: string[], endpoint: Endpoint): EndpointState {
    const state = new EndpointState(key, addresses, new CallLoad(this.callLoadOptions));
    if (this.metrics !== undefined) state.load.pickTally = this.metrics.tallyFor(addresses[0]);
    this.connectivity.add(state);
    this.slowStart.admit(state, !this.resolvedOnce);
    const leaf = new LeafLoadBalancer(endpoint, this.childHelper(state), this.childOptions, this.resolutionNote);
    state.child = this.connectivity.wrapChild(leaf, state);
    return state;
  }

  /** Takes a dropped endpoint out of the tiers and counters (the list has unindexed it; its child is destroyed by the caller). */
  private forget(state: EndpointState): void {
    this.slowStart.forget(state);
    this.placement.remove(state);
    state.usable = false;
    this.connectivity.remove(state);
    this.placement.release(state);
  }

  private childHelper(state: EndpointState): ChannelControlHelper {
    return createChildChannelControlHelper(this.helper, {
      updateState: (connectivity, _picker: Picker, errorMessage) => this.connectivity.childReported(state, connectivity, errorMessage),
      requestReresolution: () => {},
      createSubchannel: (address, args) => this.createSubchannel(state, address, args),
    });
  }

  /** The endpoint's attributes from the resolver; on a change, its tier placement follows. */
  private applyAttributes(state: EndpointState, attributes: ReadonlyMap<string, EndpointAttributes> | undefined): void {
    this.placement.attributesChanged(state, this.attributeReader.apply(state, attributes));
  }

  private updateState(connectivity: ConnectivityState, picker: Picker, errorMessage: string | null): void {
    if (connectivity !== this.currentState) this.policy.trace(`${ConnectivityState[this.currentState]} -> ${ConnectivityState[connectivity]}`);
    this.currentState = connectivity;
    this.helper.updateState(connectivity, picker, errorMessage);
  }
}
