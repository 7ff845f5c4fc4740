/**
 * The part of `@opentelemetry/api` this package calls, as our own structural types.
 * The API is an optional peer: the published `.d.ts` must compile in an app that does not
 * have it, so no declaration of ours may import it. test/metrics/otel-types.test.ts checks
 * that the real API's types fit these.
 */

/** Metric attributes (the API's `Attributes`, restricted to what we record). */
export type Attributes = Readonly<Record<string, string | number | boolean>>;

/** Options of an instrument. */
export interface InstrumentOptions {
  readonly unit?: string;
  readonly description?: string;
  readonly advice?: { readonly explicitBucketBoundaries?: number[] };
}

export interface Counter {
  add(value: number, attributes?: Attributes): void;
}

export interface Histogram {
  record(value: number, attributes?: Attributes): void;
}

export interface ObservableResult {
  observe(value: number, attributes?: Attributes): void;
}

export interface ObservableInstrument {
  addCallback(callback: (result: ObservableResult) => void): void;
}

export interface Meter {
  createCounter(name: string, options?: InstrumentOptions): Counter;
  createHistogram(name: string, options?: InstrumentOptions): Histogram;
  createObservableCounter(name: string, options?: InstrumentOptions): ObservableInstrument;
  createObservableGauge(name: string, options?: InstrumentOptions): ObservableInstrument;
}

export interface MeterProvider {
  getMeter(name: string): Meter;
}

/** The module: the global provider, and the no-op meter it returns when none is set. */
export interface OtelApiModule {
  readonly metrics: { getMeterProvider(): MeterProvider };
  createNoopMeter(): Meter;
}
