/** At most `burst` lines per `intervalMs`; what was held back is counted in one line at its end. */
import { log, logVerbosity } from './grpc-experimental';

export interface WarningLimiterOptions {
  /** Lines printed per interval before suppressing. Defaults to 10. */
  burst?: number;
  /** Length of an interval. Defaults to 60,000 ms. */
  intervalMs?: number;
  /** Where lines go. Defaults to grpc-js logging at ERROR severity (printed by default). */
  sink?: (text: string) => void;
  /** Clock. Defaults to Date.now. */
  now?: () => number;
}

export const DEFAULT_WARNING_LIMITER_OPTIONS = Object.freeze({
  burst: 10,
  intervalMs: 60_000,
});

function grpcLogSink(text: string): void {
  // grpc-js has no WARNING severity and hides INFO by default; a bad registration should be seen.
  log(logVerbosity.ERROR, text);
}

export class WarningLimiter {
  private readonly burst: number;
  private readonly intervalMs: number;
  private readonly sink: (text: string) => void;
  private readonly now: () => number;
  private windowStart = Number.NEGATIVE_INFINITY;
  private printed = 0;
  private suppressed = 0;
  private summaryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly component: string, options: WarningLimiterOptions = {}) {
    this.burst = options.burst ?? DEFAULT_WARNING_LIMITER_OPTIONS.burst;
    this.intervalMs = options.intervalMs ?? DEFAULT_WARNING_LIMITER_OPTIONS.intervalMs;
    this.sink = options.sink ?? grpcLogSink;
    this.now = options.now ?? Date.now;
  }

  /** Prints `text` unless this interval's budget is spent. */
  warn(text: string): void {
    const now = this.now();
    if (now - this.windowStart >= this.intervalMs) {
      this.flushSuppressed();
      this.windowStart = now;
      this.printed = 0;
    }
    if (this.printed < this.burst) {
      this.printed++;
      this.sink(`${this.component}: ${text}`);
      return;
    }
    this.suppressed++;
    if (!this.summaryTimer) {
      this.summaryTimer = setTimeout(() => {
        this.summaryTimer = undefined;
        this.flushSuppressed();
      }, Math.max(0, this.windowStart + this.intervalMs - now));
      this.summaryTimer.unref();
    }
  }

  /** Prints the count of held-back lines, if any. */
  flushSuppressed(): void {
    if (this.summaryTimer) {
      clearTimeout(this.summaryTimer);
      this.summaryTimer = undefined;
    }
    if (this.suppressed === 0) return;
    const count = this.suppressed;
    this.suppressed = 0;
    this.sink(`${this.component}: ${count} more warning(s) suppressed in the last ${Math.round(this.intervalMs / 1000)} s`);
  }

  /** Stops the summary timer (prints what was held back). */
  close(): void {
    this.flushSuppressed();
  }
}
