/**
 * An OpenTelemetry SDK for metrics tests: a MeterProvider whose reader exports, on
 * demand, to an in-memory exporter (cumulative), and readers of what it holds.
 */
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData,
} from '@opentelemetry/sdk-metrics';

export interface Point {
  readonly attributes: Record<string, unknown>;
  readonly value: number;
  /** Histograms: number of recordings. */
  readonly count?: number;
}

export interface TestMetrics {
  readonly provider: MeterProvider;
  /** Exports now and returns the points of instrument `name` (empty if it has none). */
  collect(name: string): Promise<Point[]>;
  /** Every instrument name exported so far. */
  names(): Promise<string[]>;
  shutdown(): Promise<void>;
}

/** A provider with an in-memory exporter; `global` also installs it as the global MeterProvider. */
export function startTestMetrics({ global = true }: { global?: boolean } = {}): TestMetrics {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // The interval is irrelevant: every read is a forceFlush.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  if (global) {
    metrics.disable();
    metrics.setGlobalMeterProvider(provider);
  }
  const latest = async (): Promise<MetricData[]> => {
    exporter.reset();
    await reader.forceFlush();
    const exported = exporter.getMetrics();
    return exported.flatMap(r => r.scopeMetrics.flatMap(s => s.metrics));
  };
  return {
    provider,
    async collect(name) {
      const data = (await latest()).filter(m => m.descriptor.name === name);
      return data.flatMap(m => m.dataPoints.map(p => {
        const v = p.value as number | { count: number; sum?: number };
        return typeof v === 'number'
          ? { attributes: { ...p.attributes }, value: v }
          : { attributes: { ...p.attributes }, value: v.sum ?? 0, count: v.count };
      }));
    },
    async names() {
      return (await latest()).map(m => m.descriptor.name);
    },
    async shutdown() {
      if (global) metrics.disable();
      await provider.shutdown();
    },
  };
}

/** Sum of the points whose attributes include `match`. */
export function total(points: readonly Point[], match: Record<string, unknown> = {}): number {
  return points.filter(p => Object.entries(match).every(([k, v]) => p.attributes[k] === v)).reduce((sum, p) => sum + p.value, 0);
}
