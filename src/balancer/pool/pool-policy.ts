/**
 * What a policy plugs into the shared endpoint layer (`EndpointPoolBalancer`),
 * and the layer's injection points.
 */
import { type Tracer, type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { type CallLoadOptions } from './call-load';
import { type EtcdPolicyConfig } from '../policies/policy-config';
import { type PickStrategy } from '../schedulers/pick-strategy';

/** Injection points of a balancer (unit tests; production uses the defaults). */
export interface EndpointPoolOptions extends CallLoadOptions {
  /** Randomness for the schedulers: [0, 1). Defaults to Math.random. */
  random?: () => number;
  /**
   * How long the first READY picker waits for endpoints still connecting, so a
   * startup burst is spread (only once per balancer). Defaults to 100.
   */
  startupSettleMs?: number;
}

/** Default of `EndpointPoolOptions.startupSettleMs`. */
export const DEFAULT_STARTUP_SETTLE_MS = 100;

/** What a policy plugs into the shared layer. */
export interface PoolPolicy<C extends EtcdPolicyConfig> {
  readonly typeName: string;
  readonly trace: Tracer;
  /** False for a policy zone-aware routing must leave alone (ring hash: stickiness wins). Defaults to true. */
  readonly zoneAware?: boolean;
  isConfig(config: TypedLoadBalancingConfig): config is C;
  createStrategy(config: C, random: () => number): PickStrategy;
}
