/**
 * An OpenTelemetry SDK as an application would run it, for the throughput
 * scenario's metrics-on variant: a MeterProvider whose periodic reader collects
 * every second into an exporter that drops the data (the collection is the cost,
 * not the wire). Installed as the global provider only while a client is created:
 * instruments are bound at creation, so later clients stay unmetered.
 */
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';

const DROPPING_EXPORTER: PushMetricExporter = {
  export: (_metrics, done) => done({ code: 0 }),
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
  selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
};

export interface BenchMetricsSdk {
  /** Runs `create` with this provider installed as the global one, then uninstalls it. */
  bind<T>(create: () => T): T;
  shutdown(): Promise<void>;
}

export function startBenchMetricsSdk(): BenchMetricsSdk {
  const provider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: DROPPING_EXPORTER, exportIntervalMillis: 1000 })] });
  return {
    bind(create) {
      metrics.setGlobalMeterProvider(provider);
      try {
        return create();
      } finally {
        metrics.disable();
      }
    },
    shutdown: () => provider.shutdown(),
  };
}
