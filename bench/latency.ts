/**
 * Latency recording for the bench: an HdrHistogram in microseconds (3
 * significant digits, 1 µs to 60 s), summarised as the percentiles the report
 * shows. One recorder per measured run.
 */
import * as hdr from 'hdr-histogram-js';

/** Percentiles of one run, in milliseconds. */
export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
  /** Values recorded. */
  readonly count: number;
}

/** The percentiles in report order, with their labels. */
export const PERCENTILES: ReadonlyArray<{ key: 'p50' | 'p90' | 'p99' | 'p999'; label: string; percentile: number }> = Object.freeze([
  { key: 'p50', label: 'p50', percentile: 50 },
  { key: 'p90', label: 'p90', percentile: 90 },
  { key: 'p99', label: 'p99', percentile: 99 },
  { key: 'p999', label: 'p99.9', percentile: 99.9 },
]);

const HIGHEST_TRACKABLE_US = 60_000_000;

export class LatencyRecorder {
  private readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    numberOfSignificantValueDigits: 3,
  });

  /** Records one latency in milliseconds (clamped to [1 µs, 60 s]). */
  record(ms: number): void {
    const us = Math.round(ms * 1000);
    this.histogram.recordValue(Math.min(HIGHEST_TRACKABLE_US, Math.max(1, us)));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  summary(): LatencySummary {
    const h = this.histogram;
    const at = (p: number): number => round3(h.totalCount === 0 ? 0 : h.getValueAtPercentile(p) / 1000);
    return {
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: round3(h.totalCount === 0 ? 0 : h.maxValue / 1000),
      mean: round3(h.totalCount === 0 ? 0 : h.mean / 1000),
      count: h.totalCount,
    };
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
