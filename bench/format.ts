/** Number formatting shared by tables, the report and target checks. */

/** `1.23×`; `n/a` for a missing or non-finite ratio. */
export function ratio(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : `${value.toFixed(2)}×`;
}

/** `12.3 ms` with precision that fits the magnitude. */
export function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  if (value >= 100) return `${Math.round(value)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

/** `12.3 %` of a fraction. */
export function percent(fraction: number | undefined, digits = 1): string {
  return fraction === undefined || !Number.isFinite(fraction) ? 'n/a' : `${(100 * fraction).toFixed(digits)} %`;
}

/** `12,345`. */
export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** `123 ns` / `1.2 µs`. */
export function ns(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} µs`;
  return `${value.toFixed(value >= 100 ? 0 : 1)} ns`;
}

/** Median of a non-empty list (the mean of the middle two for even lengths). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Rounds to `digits` decimals (for JSON output). */
export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
