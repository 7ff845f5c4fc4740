/**
 * The startup hold: grpc-js queues the calls made before the channel is READY
 * and picks them all with the first READY picker, so with one endpoint
 * connected a startup burst would all land there (round_robin does this). The
 * first READY picker is held back up to `settleMs` while other endpoints are
 * still connecting; once per balancer.
 */

/** One balancer's startup hold. */
export class StartupSettle {
  private untilMs: number | undefined;
  private done = false;
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param settleMs The longest hold (≤ 0: none).
   * @param onTimeout Called once when the hold ends by time (publish again).
   * @param onStart Called once when the hold starts (a trace).
   */
  constructor(
    private readonly settleMs: number,
    private readonly nowMs: () => number,
    private readonly onTimeout: () => void,
    private readonly onStart: () => void,
  ) {}

  /** True while the first READY picker should wait; `connecting`: endpoints still connecting. */
  hold(connecting: number): boolean {
    if (this.done || this.settleMs <= 0 || connecting === 0) return false;
    const nowMs = this.nowMs();
    if (this.untilMs === undefined) {
      this.untilMs = nowMs + this.settleMs;
      this.timer = setTimeout(() => {
        this.done = true;
        this.onTimeout();
      }, this.settleMs);
      this.timer.unref();
      this.onStart();
    }
    return nowMs < this.untilMs;
  }

  /** A READY picker was published: no more holding. */
  finish(): void {
    this.done = true;
  }

  destroy(): void {
    clearTimeout(this.timer);
  }
}
