/**
 * Slow start for every etcd_* policy (`slowStart: { windowMs, aggression?,
 * minWeightPercent? }`): a joining or returning endpoint's weight grows over
 * `windowMs` by Envoy's formula (as its code computes it, flooring elapsed time
 * at 1 ms), never below `MIN_SLOW_START_FACTOR` so the schedulers' steps stay
 * bounded. The clock starts at READY, not discovery; when it starts and restarts:
 * docs/client-registry-and-zones.md, "Slow start". One timer per balancer, only
 * while some endpoint warms; a tick re-weights only the warming endpoints.
 */
import { type EndpointState } from './endpoint-state';

/** The `slowStart` field of every `etcd_*` policy config, after validation. */
export interface SlowStartConfig {
  /** Warm-up duration in ms (> 0). */
  readonly windowMs: number;
  /** Curve: 1 = linear, > 1 ramps up fast then slows, < 1 the opposite. Defaults to 1. */
  readonly aggression: number;
  /** Floor of the factor, percent of the endpoint's weight. Defaults to 10. */
  readonly minWeightPercent: number;
}

/** `slowStart.aggression` when not given (a linear ramp). */
export const DEFAULT_SLOW_START_AGGRESSION = 1;
/** `slowStart.minWeightPercent` when not given. */
export const DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT = 10;
/** The finest weight-recompute period; the period is max(this, windowMs / 10). */
export const MIN_SLOW_START_TICK_MS = 100;
export const MAX_SLOW_START_WINDOW_MS = 86_400_000;
const MAX_AGGRESSION = 1000;
export const MIN_SLOW_START_FACTOR = 1e-3;
export const SLOW_START_FIELDS = ['windowMs', 'aggression', 'minWeightPercent'] as const;

/** The share of its weight an endpoint warming for `elapsedMs` gets (1 once the window is over). */
export function slowStartFactor(config: SlowStartConfig, elapsedMs: number): number {
  if (elapsedMs >= config.windowMs) return 1;
  const timeFactor = Math.max(elapsedMs, 1) / config.windowMs;
  const curve = config.aggression === 1 ? timeFactor : timeFactor ** (1 / config.aggression);
  return Math.min(1, Math.max(config.minWeightPercent / 100, curve, MIN_SLOW_START_FACTOR));
}

/** How often warming weights are recomputed. */
export function slowStartTickMs(config: SlowStartConfig): number {
  return Math.max(MIN_SLOW_START_TICK_MS, config.windowMs / 10);
}

function describe(value: unknown): string {
  return value === undefined ? 'undefined' : JSON.stringify(value) ?? String(value);
}

function numberField(body: Record<string, unknown>, field: string, defaultValue: number | undefined, ok: (v: number) => boolean, range: string): number {
  const value = body[field];
  if ((value === undefined || value === null) && defaultValue !== undefined) return defaultValue;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) throw new Error(`slowStart.${field} must be a number ${range}, got ${describe(value)}`);
  return value;
}

/** Parses `slowStart`, if present. Throws naming the field and the bad value. */
export function parseSlowStart(json: Record<string, unknown>): SlowStartConfig | undefined {
  const value = json.slowStart;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`slowStart must be an object like {"windowMs":30000}, got ${describe(value)}`);
  const body = value as Record<string, unknown>;
  return Object.freeze({
    windowMs: numberField(body, 'windowMs', undefined, v => v > 0 && v <= MAX_SLOW_START_WINDOW_MS, `in (0, ${MAX_SLOW_START_WINDOW_MS}] (required)`),
    aggression: numberField(body, 'aggression', DEFAULT_SLOW_START_AGGRESSION, v => v > 0 && v <= MAX_AGGRESSION, `in (0, ${MAX_AGGRESSION}]`),
    minWeightPercent: numberField(body, 'minWeightPercent', DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT, v => v >= 0 && v <= 100, 'in [0, 100]'),
  });
}

export function sameSlowStart(a: SlowStartConfig | undefined, b: SlowStartConfig | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.windowMs === b.windowMs && a.aggression === b.aggression && a.minWeightPercent === b.minWeightPercent;
}

/** What an endpoint leaving the list leaves behind, so a quick return does not restart (or skip) its warm-up. */
interface Departure {
  readonly goneAtMs: number;
  readonly unusableSinceMs: number;
  readonly warmStartMs: number | undefined;
}

/**
 * One balancer's warm-up bookkeeping. The balancer tells it about endpoints
 * (admitted, usable, unusable, forgotten); it sets `slowStartFactor` on them
 * and calls `reweigh(endpoint)` when a usable endpoint's factor changed, for
 * the balancer to re-place it in its tier.
 */
export class SlowStartTracker {
  private config: SlowStartConfig | undefined;
  private readonly warming = new Set<EndpointState>();
  /** Recent departures by endpoint key, oldest first (Map order), pruned after windowMs. */
  private readonly departures = new Map<string, Departure>();
  private timer: NodeJS.Timeout | undefined;
  private timerPeriodMs = 0;

  constructor(private readonly nowMs: () => number, private readonly reweigh: (endpoint: EndpointState) => void) {}

  get warmingCount(): number {
    return this.warming.size;
  }

  /** Whether the tick timer runs (tests). */
  get ticking(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Applies the config. Turned off: every warming endpoint is at full weight at once.
   * Changed: warming endpoints follow the new curve from their own start.
   * Turned on: endpoints already serving are not cold; only later joins warm.
   */
  configure(config: SlowStartConfig | undefined): void {
    if (sameSlowStart(config, this.config)) return;
    this.config = config;
    if (config === undefined) {
      this.departures.clear();
      for (const endpoint of this.warming) {
        endpoint.setWarmUp(1, undefined);
        this.reweigh(endpoint);
      }
      this.warming.clear();
      this.stopTimer();
      return;
    }
    this.tick();
  }

  /** A new endpoint state. `initial`: created by the balancer's first resolution. */
  admit(endpoint: EndpointState, initial: boolean): void {
    const nowMs = this.nowMs();
    endpoint.setWarmUp(1, undefined);
    if (initial) {
      endpoint.setUnusableSince(nowMs);
      return;
    }
    const departure = this.config === undefined ? undefined : this.departures.get(endpoint.key);
    if (departure !== undefined && nowMs - departure.goneAtMs <= this.config!.windowMs) {
      endpoint.setUnusableSince(departure.unusableSinceMs);
      endpoint.setWarmUp(1, departure.warmStartMs);
    } else {
      endpoint.setUnusableSince(-Infinity);
    }
  }

  /** The endpoint became usable; sets its factor before the balancer places it. */
  becameUsable(endpoint: EndpointState): void {
    const config = this.config;
    if (config === undefined) return;
    const nowMs = this.nowMs();
    const startMs = nowMs - endpoint.unusableSinceMs > config.windowMs ? nowMs : endpoint.warmStartMs;
    if (startMs === undefined) return;
    const factor = slowStartFactor(config, nowMs - startMs);
    endpoint.setWarmUp(factor, factor >= 1 ? undefined : startMs);
    if (factor >= 1) return;
    this.warming.add(endpoint);
    this.startTimer(config);
  }

  /** The endpoint stopped being usable: its absence clock starts. */
  becameUnusable(endpoint: EndpointState): void {
    endpoint.setUnusableSince(this.nowMs());
    this.warming.delete(endpoint);
  }

  /** The endpoint left the balancer (dropped, or replaced by a new child). */
  forget(endpoint: EndpointState): void {
    this.warming.delete(endpoint);
    const config = this.config;
    if (config === undefined) return;
    const nowMs = this.nowMs();
    this.pruneDepartures(nowMs, config);
    this.departures.delete(endpoint.key);
    this.departures.set(endpoint.key, {
      goneAtMs: nowMs,
      unusableSinceMs: endpoint.usable ? nowMs : endpoint.unusableSinceMs,
      warmStartMs: endpoint.warmStartMs,
    });
  }

  destroy(): void {
    this.stopTimer();
    this.warming.clear();
    this.departures.clear();
  }

  /** Recomputes the warming endpoints' factors (the timer's work; public for tests on an injected clock). */
  tick(): void {
    const config = this.config;
    if (config === undefined) return;
    const nowMs = this.nowMs();
    this.pruneDepartures(nowMs, config);
    for (const endpoint of this.warming) {
      const factor = slowStartFactor(config, nowMs - endpoint.warmStartMs!);
      const changed = factor !== endpoint.slowStartFactor;
      if (factor >= 1) {
        this.warming.delete(endpoint);
        endpoint.setWarmUp(factor, undefined);
      } else {
        endpoint.setWarmUp(factor, endpoint.warmStartMs);
      }
      if (changed) this.reweigh(endpoint);
    }
    if (this.warming.size === 0) this.stopTimer();
    else this.startTimer(config);
  }

  private pruneDepartures(nowMs: number, config: SlowStartConfig): void {
    for (const [key, departure] of this.departures) {
      if (nowMs - departure.goneAtMs <= config.windowMs) break;
      this.departures.delete(key);
    }
  }

  private startTimer(config: SlowStartConfig): void {
    const periodMs = slowStartTickMs(config);
    if (this.timer !== undefined && this.timerPeriodMs === periodMs) return;
    this.stopTimer();
    this.timerPeriodMs = periodMs;
    this.timer = setInterval(() => this.tick(), periodMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
