/**
 * Where instruments come from: the global `MeterProvider` of `@opentelemetry/api`,
 * looked up when a component is created (a channel's resolver or balancer, a retry
 * interceptor, a registration), never per call or per pick.
 *
 * The metrics API has no proxy provider: a meter taken from the no-op provider stays
 * a no-op after the application installs its own. So nothing is taken before it is
 * needed, and a component created while no provider is set (or without the API
 * installed) gets `null` and records nothing, at no cost on its hot paths. A
 * component keeps the instruments it was created with; a provider set (or replaced)
 * later applies to components created after it. Hence: set your MeterProvider
 * before creating channels.
 */
import type { Meter } from '@opentelemetry/api';
import { BalancerInstruments } from './balancer-metrics';
import { getMetricsOptions, type ResolvedMetricsOptions } from './metrics-options';
import { otelApi } from './otel-api';
import { RegistryInstruments } from './registry-metrics';
import { ResolverInstruments } from './resolver-metrics';
import { RetryInstruments } from './retry-metrics';

/** The instrumentation scope name every instrument is created under. */
export const METER_NAME = 'grpc-etcd-lb';

/** The instruments of one MeterProvider, each group created on first use. */
export class MetricsBinding {
  private resolverInstruments: ResolverInstruments | undefined;
  private registryInstruments: RegistryInstruments | undefined;
  private balancerInstruments: BalancerInstruments | undefined;
  private retryInstruments: RetryInstruments | undefined;

  constructor(readonly meter: Meter, readonly options: ResolvedMetricsOptions) {}

  get resolver(): ResolverInstruments {
    return (this.resolverInstruments ??= new ResolverInstruments(this.meter));
  }

  get registry(): RegistryInstruments {
    return (this.registryInstruments ??= new RegistryInstruments(this.meter, this.options));
  }

  get balancer(): BalancerInstruments {
    return (this.balancerInstruments ??= new BalancerInstruments(this.meter, this.options));
  }

  get retry(): RetryInstruments {
    return (this.retryInstruments ??= new RetryInstruments(this.meter));
  }
}

let cached: { provider: unknown; options: ResolvedMetricsOptions; binding: MetricsBinding | null } | undefined;

/**
 * The instruments of the current global MeterProvider, or null when there are none to
 * record to: `@opentelemetry/api` not installed, or no provider set (the API's no-op).
 */
export function currentMetrics(): MetricsBinding | null {
  const api = otelApi();
  if (api === null) return null;
  const provider = api.metrics.getMeterProvider();
  const options = getMetricsOptions();
  if (cached !== undefined && cached.provider === provider && cached.options === options) return cached.binding;
  const meter = provider.getMeter(METER_NAME);
  const binding = meter === api.createNoopMeter() ? null : new MetricsBinding(meter, options);
  cached = { provider, options, binding };
  return binding;
}
