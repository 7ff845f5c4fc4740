/**
 * `npm run demo -- --metrics-port 9464`: the client's OpenTelemetry metrics on a
 * Prometheus endpoint while the demo runs. The application's side of the deal:
 * an SDK MeterProvider with the Prometheus exporter as its reader, installed as the
 * global provider *before* `register()` and before any channel is created.
 * (`@opentelemetry/sdk-metrics` and `@opentelemetry/exporter-prometheus` are dev
 * dependencies of this repository, not dependencies of the package.)
 */
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

export interface PrometheusEndpoint {
  /** `http://127.0.0.1:<port>/metrics`. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Serves /metrics on `port` (all interfaces) and installs the global MeterProvider. */
export async function servePrometheus(port: number): Promise<PrometheusEndpoint> {
  const exporter = new PrometheusExporter({ port, preventServerStart: true });
  await exporter.startServer();
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    async stop() {
      metrics.disable();
      await provider.shutdown();
    },
  };
}
