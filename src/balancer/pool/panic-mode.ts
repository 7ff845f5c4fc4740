/**
 * One balancer's panic threshold as the config sets it (see
 * panic-threshold.ts): a `PanicGuard` while health checking is on with a
 * threshold above 0, and what a flip shows: one line at default verbosity per
 * enter and leave (rate-limited, so a flapping tier cannot flood the log) and
 * the `grpc_etcd_lb.lb.panic_changes` counter.
 */
import { WarningLimiter } from '../../common/warning-limiter';
import { type BalancerMetrics } from '../../metrics/balancer-metrics';
import { PanicGuard, type PanicCounts } from '../health/panic-threshold';
import { type EtcdPolicyConfig } from '../policies/policy-config';

export class PanicMode {
  private guard: PanicGuard | undefined;
  private readonly warnings: WarningLimiter;

  /** `flipped(priority)`: the balancer places that priority's endpoints again. */
  constructor(policy: string, private readonly metrics: BalancerMetrics | undefined, private readonly flipped: (priority: number) => void) {
    this.warnings = new WarningLimiter(policy);
  }

  /** The guard for `config` (kept while the threshold stays), undefined when panic cannot happen. */
  configure(config: EtcdPolicyConfig): PanicGuard | undefined {
    const threshold = config.healthCheck === undefined ? 0 : config.panicThresholdPercent;
    if (threshold === 0) return this.guard = undefined;
    if (this.guard?.thresholdPercent !== threshold) this.guard = new PanicGuard(threshold, (counts, panic) => this.report(counts, panic));
    return this.guard;
  }

  private report(counts: PanicCounts, panic: boolean): void {
    const { priority, ready, healthy } = counts;
    const share = ready === 0 ? 'no READY endpoint' : `${healthy} of ${ready} READY endpoints healthy (${Math.round((100 * healthy) / ready)} %)`;
    const threshold = this.guard?.thresholdPercent;
    this.warnings.warn(panic
      ? `priority ${priority} tier entered panic: ${share}, below panicThresholdPercent ${threshold}; picking among all its READY endpoints, health ignored`
      : `priority ${priority} tier left panic: ${share}; health checks decide again`);
    this.metrics?.panicChanged(panic, priority);
    this.flipped(priority);
  }
}
