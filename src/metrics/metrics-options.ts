/** `register({ metrics })`: what the OpenTelemetry instruments record (see metrics-binding.ts). */

/** Options of `register({ metrics })`; every field is optional. */
export interface MetricsOptions {
  /** Adds per-endpoint series (`endpoint` attribute, in-flight, latency); leave off for large fleets. Defaults to false. */
  perEndpoint?: boolean;
}

/** {@link MetricsOptions} with every default filled in, frozen. */
export type ResolvedMetricsOptions = Readonly<Required<MetricsOptions>>;

/** The defaults of {@link MetricsOptions}: `{ perEndpoint: false }` (bounded attributes only). Frozen. */
export const DEFAULT_METRICS_OPTIONS: ResolvedMetricsOptions = Object.freeze({ perEndpoint: false });

const KNOWN_KEYS: ReadonlySet<string> = new Set<keyof MetricsOptions>(['perEndpoint']);

/** Fills in defaults; throws a TypeError naming the bad option and value. */
export function resolveMetricsOptions(options: MetricsOptions, where = 'register()'): ResolvedMetricsOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${where}: metrics must be an object like { perEndpoint: true }, got ${JSON.stringify(options) ?? String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) throw new TypeError(`${where}: unknown option 'metrics.${key}' (known: ${[...KNOWN_KEYS].join(', ')})`);
  }
  const perEndpoint = options.perEndpoint ?? DEFAULT_METRICS_OPTIONS.perEndpoint;
  if (typeof perEndpoint !== 'boolean') {
    throw new TypeError(`${where}: metrics.perEndpoint must be a boolean, got ${JSON.stringify(perEndpoint) ?? String(perEndpoint)}`);
  }
  return Object.freeze({ perEndpoint });
}

let metricsOptions: ResolvedMetricsOptions = DEFAULT_METRICS_OPTIONS;

/** Sets the options used by instruments bound from now on (see `register({ metrics })`). */
export function setMetricsOptions(options: ResolvedMetricsOptions): void {
  metricsOptions = options;
}

/** The options instruments bound now use: the last `setMetricsOptions`, else the defaults. */
export function getMetricsOptions(): ResolvedMetricsOptions {
  return metricsOptions;
}
