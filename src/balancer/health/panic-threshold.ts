/**
 * The panic threshold (Envoy's `healthy_panic_threshold`): below it a priority
 * picks among all its READY endpoints, health ignored, because health checks
 * marking most of a tier unhealthy is more often a bad check than bad hosts.
 * Priority p panics when healthy(p) < threshold × ready(p) (ready: READY with a
 * verdict) and either some endpoint of p is healthy or none is anywhere, so
 * failover to a healthy standby comes first (docs/routing.md). O(1) per endpoint
 * change; a flip is reported to the owner, which moves that priority (rare, O(n)).
 */

/** What the guard counts an endpoint by. */
export interface PanicMember {
  readonly priority: number;
  /** READY and healthy (the pickers' usual candidates). */
  readonly usable: boolean;
  /** READY connection with a health verdict. */
  readonly healthKnown: boolean;
}

/** One priority's counts and state. */
export interface PanicCounts {
  readonly priority: number;
  readonly ready: number;
  readonly healthy: number;
}

interface Counted {
  priority: number;
  known: boolean;
  healthy: boolean;
}

interface Tally {
  ready: number;
  healthy: number;
  panic: boolean;
}

export class PanicGuard {
  private readonly counted = new Map<PanicMember, Counted>();
  private readonly byPriority = new Map<number, Tally>();
  private healthyTotal = 0;

  /**
   * @param thresholdPercent in (0, 100].
   * @param flipped called when a priority enters or leaves panic (its endpoints must be placed again).
   */
  constructor(readonly thresholdPercent: number, private readonly flipped: (counts: PanicCounts, panic: boolean) => void) {}

  /** Whether priority `priority` picks among all its READY endpoints now. */
  inPanic(priority: number): boolean {
    return this.byPriority.get(priority)?.panic ?? false;
  }

  /** Whether any priority is in panic. */
  get anyPanic(): boolean {
    for (const tally of this.byPriority.values()) if (tally.panic) return true;
    return false;
  }

  /** Priorities in panic (metrics, diagnostics). */
  panicPriorities(): number[] {
    return [...this.byPriority].filter(([, t]) => t.panic).map(([p]) => p);
  }

  /** Counts `member` as it is now (moving its counts if its priority or health changed). */
  track(member: PanicMember): void {
    const before = this.counted.get(member);
    const known = member.healthKnown || member.usable;
    const healthy = member.usable;
    if (before !== undefined && before.priority === member.priority && before.known === known && before.healthy === healthy) return;
    const wasAnyHealthy = this.healthyTotal > 0;
    if (before !== undefined) this.add(before.priority, before.known, before.healthy, -1);
    this.add(member.priority, known, healthy, 1);
    this.counted.set(member, { priority: member.priority, known, healthy });
    if (wasAnyHealthy !== this.healthyTotal > 0) {
      for (const priority of this.byPriority.keys()) this.evaluate(priority);
    } else {
      if (before !== undefined && before.priority !== member.priority) this.evaluate(before.priority);
      this.evaluate(member.priority);
    }
  }

  /** Stops counting `member` (it left the balancer). */
  untrack(member: PanicMember): void {
    const before = this.counted.get(member);
    if (before === undefined) return;
    this.counted.delete(member);
    const wasAnyHealthy = this.healthyTotal > 0;
    this.add(before.priority, before.known, before.healthy, -1);
    if (wasAnyHealthy !== this.healthyTotal > 0) for (const priority of this.byPriority.keys()) this.evaluate(priority);
    else this.evaluate(before.priority);
  }

  private add(priority: number, known: boolean, healthy: boolean, delta: number): void {
    let tally = this.byPriority.get(priority);
    if (tally === undefined) this.byPriority.set(priority, tally = { ready: 0, healthy: 0, panic: false });
    if (known) tally.ready += delta;
    if (healthy) {
      tally.healthy += delta;
      this.healthyTotal += delta;
    }
  }

  private evaluate(priority: number): void {
    const tally = this.byPriority.get(priority);
    if (tally === undefined) return;
    const panic = tally.ready > 0
      && tally.healthy * 100 < this.thresholdPercent * tally.ready
      && (tally.healthy > 0 || this.healthyTotal === 0);
    if (panic !== tally.panic) {
      tally.panic = panic;
      this.flipped({ priority, ready: tally.ready, healthy: tally.healthy }, panic);
    }
    if (!panic && tally.ready === 0 && tally.healthy === 0) this.byPriority.delete(priority);
  }
}
