/**
 * Instruments come from the global `MeterProvider`, looked up when a component is created,
 * never per call. The API has no proxy provider (a no-op meter stays no-op), so a component
 * created with no provider gets `null` and records nothing: set yours before creating channels.
 */
import type { Meter } from './otel-types';
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

/** The current global MeterProvider's instruments, or null without the API or a provider. */
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
