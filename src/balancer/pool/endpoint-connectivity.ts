/**
 * What a balancer's endpoints are worth, from their children's reports and,
 * with `healthCheck` configured, their grpc.health.v1 verdicts: each endpoint's
 * connectivity (the only writer of `EndpointState.report`), counters per state
 * so no channel-state decision scans the endpoints, and the last error to show.
 * An endpoint is usable while READY, which with health checking on means READY
 * and healthy (see `EndpointHealthChecks`).
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { type SubchannelInterface, type Tracer } from '../../common/grpc-experimental';
import { EndpointHealthChecks } from '../health/health-checks';
import { type HealthCheckConfig } from '../policies/policy-config';
import { type EndpointChild, type EndpointState } from './endpoint-state';

/** What the balancer does with the changes. */
export interface ConnectivityOwner {
  readonly trace: Tracer;
  /** Whether reports about `state` still count (balancer alive, endpoint still listed). */
  holds(state: EndpointState): boolean;
  /** `state` became usable or stopped being usable: slow start and tiers follow. */
  usableChanged(state: EndpointState, usable: boolean): void;
  /** A connection went READY → not READY: the only reason to ask for re-resolution. */
  connectionLost(): void;
  /** Something changed: publish (batched). */
  changed(): void;
  /** `state.healthKnown` changed (a READY connection got or lost its health verdict). */
  healthKnownChanged(state: EndpointState): void;
  /** A connected endpoint flipped healthy ↔ unhealthy (set when metrics are on). */
  readonly healthFlipped: ((healthy: boolean) => void) | undefined;
}

/** Connectivity and health of one balancer's endpoints. */
export class EndpointConnectivity {
  private readonly inState = new Int32Array(ConnectivityState.SHUTDOWN + 1);
  private connectedCount = 0;
  private error: string | null = null;
  private checks: EndpointHealthChecks | undefined;

  constructor(private readonly owner: ConnectivityOwner) {}

  /** Endpoints in `connectivity`. */
  count(connectivity: ConnectivityState): number {
    return this.inState[connectivity];
  }

  /** Endpoints with a READY connection (healthy or not). */
  get connected(): number {
    return this.connectedCount;
  }

  /** The latest connection or health error. */
  get lastError(): string | null {
    return this.error;
  }

  /** Set while the config asks for health checking. */
  get health(): EndpointHealthChecks | undefined {
    return this.checks;
  }

  /** Applies `healthCheck`; true when it changed (on/off or service name), so every child must be replaced. */
  applyHealthCheck(healthCheck: HealthCheckConfig | undefined): boolean {
    const serviceName = healthCheck?.serviceName;
    if (serviceName === this.checks?.serviceName) return false;
    this.owner.trace(serviceName === undefined ? 'health checking off' : `health checking on, service '${serviceName}'`);
    this.checks = serviceName === undefined ? undefined : new EndpointHealthChecks(serviceName, endpoint => this.healthChanged(endpoint));
    return true;
  }

  /** The child a new endpoint gets: `leaf`, wrapped while health checking is on. */
  wrapChild(leaf: EndpointChild, endpoint: EndpointState): EndpointChild {
    return this.checks?.wrapChild(leaf, endpoint) ?? leaf;
  }

  /** A subchannel created for `endpoint`, wrapped while health checking is on. */
  wrapSubchannel(endpoint: EndpointState, subchannel: SubchannelInterface): SubchannelInterface {
    return this.checks?.wrapSubchannel(endpoint, subchannel) ?? subchannel;
  }

  /** Counts a new endpoint. */
  add(endpoint: EndpointState): void {
    this.inState[endpoint.state]++;
  }

  /** Stops counting a dropped endpoint. */
  remove(endpoint: EndpointState): void {
    this.inState[endpoint.state]--;
    if (endpoint.connected) this.connectedCount--;
    endpoint.report(endpoint.state, false);
    endpoint.healthKnown = false;
  }

  /** The endpoint's child reported a state. */
  childReported(state: EndpointState, connectivity: ConnectivityState, errorMessage: string | null): void {
    if (!this.owner.holds(state)) return;
    if (this.checks === undefined) {
      if (errorMessage) this.error = errorMessage;
      this.set(state, connectivity, connectivity === ConnectivityState.READY);
      return;
    }
    this.checks.setReported(state, connectivity);
    // While connected, the child's error is only "picked subchannel is unhealthy": the view says why.
    if (errorMessage && !this.checks.view(state).connected) this.error = errorMessage;
    this.healthChanged(state);
  }

  private healthChanged(state: EndpointState): void {
    if (this.checks === undefined || !this.owner.holds(state)) return;
    const view = this.checks.view(state);
    if (view.error !== undefined) this.error = view.error;
    if (this.owner.healthFlipped !== undefined) {
      const flip = this.checks.takeFlip(state);
      if (flip !== undefined) this.owner.healthFlipped(flip === 'healthy');
    }
    const verdict = view.connected ? this.checks.verdict(state) : undefined;
    this.set(state, view.connectivity, view.connected, verdict === 'healthy' || verdict === 'unhealthy');
  }

  /** O(1) bookkeeping plus the endpoint's tier move: what a connectivity or health change costs. */
  private set(state: EndpointState, connectivity: ConnectivityState, connected: boolean, healthKnown = false): void {
    const previous = state.state;
    const wasConnected = state.connected;
    this.inState[previous]--;
    this.inState[connectivity]++;
    state.report(connectivity, connected);
    if (previous !== connectivity && this.owner.trace.enabled) this.owner.trace(`${state.key} ${ConnectivityState[previous]} -> ${ConnectivityState[connectivity]}`);
    if (connected !== wasConnected) {
      this.connectedCount += connected ? 1 : -1;
      if (!connected) this.owner.connectionLost();
    }
    const usable = connectivity === ConnectivityState.READY;
    if (usable !== state.usable) this.owner.usableChanged(state, usable);
    if (healthKnown !== state.healthKnown) {
      state.healthKnown = healthKnown;
      this.owner.healthKnownChanged(state);
    }
    // Keep every endpoint connected, as round_robin does.
    if (connectivity === ConnectivityState.IDLE) state.child.exitIdle();
    this.owner.changed();
  }
}
