/** Client-side accounting for the demo: per replica calls, latency (HdrHistogram), retries. */
import * as hdr from 'hdr-histogram-js';

class ReplicaStats {
  total = 0;
  retried = 0;
  firstServedAt: number | undefined;
  lastServedAt: number | undefined;
}

interface WindowStats { calls: number; byReplica: Map<string, { calls: number; p99Ms: number }> }

export class LoadStats {
  totalCalls = 0;
  totalFailed = 0;
  private readonly replicas = new Map<string, ReplicaStats>();
  private readonly reasons = new Map<string, number>();
  private readonly all = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  private windowCalls = 0;
  private windowByReplica = new Map<string, { calls: number; hist: hdr.Histogram }>();

  replica(name: string): ReplicaStats {
    let r = this.replicas.get(name);
    if (!r) {
      r = new ReplicaStats();
      this.replicas.set(name, r);
    }
    return r;
  }

  served(name: string, ms: number): void {
    this.totalCalls++;
    this.windowCalls++;
    const r = this.replica(name);
    r.total++;
    const now = Date.now();
    r.firstServedAt ??= now;
    r.lastServedAt = now;
    const micros = Math.max(1, Math.round(ms * 1000));
    this.all.recordValue(micros);
    let w = this.windowByReplica.get(name);
    if (!w) {
      w = { calls: 0, hist: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 2 }) };
      this.windowByReplica.set(name, w);
    }
    w.calls++;
    w.hist.recordValue(micros);
  }

  failed(reason: string): void {
    this.totalCalls++;
    this.totalFailed++;
    this.windowCalls++;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
  }

  /** An attempt on `address` failed and the call was retried. */
  retried(address: string | undefined): void {
    if (!address) return;
    const name = this.nameOf(address);
    if (name) this.replica(name).retried++;
  }

  /** Maps a replica address to its name; set by the demo as replicas start. */
  readonly names = new Map<string, string>();
  private nameOf(address: string): string | undefined {
    return this.names.get(address);
  }

  /** The last interval's figures; starts a new interval. */
  window(): WindowStats {
    const byReplica = new Map<string, { calls: number; p99Ms: number }>();
    for (const [name, w] of this.windowByReplica) {
      byReplica.set(name, { calls: w.calls, p99Ms: w.hist.getValueAtPercentile(99) / 1000 });
      w.hist.destroy();
    }
    const calls = this.windowCalls;
    this.windowCalls = 0;
    this.windowByReplica = new Map();
    return { calls, byReplica };
  }

  overall(): { p50Ms: number; p99Ms: number } {
    return { p50Ms: this.all.getValueAtPercentile(50) / 1000, p99Ms: this.all.getValueAtPercentile(99) / 1000 };
  }

  failureReasons(): Array<[string, number]> {
    return [...this.reasons];
  }
}
