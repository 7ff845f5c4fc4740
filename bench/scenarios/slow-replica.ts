/**
 * `slow-replica`: 5 replicas, one answering 20 ms late. Latency percentiles and
 * the slow replica's share per policy (grpc-js `round_robin`, `pick_first` and
 * `weighted_round_robin` fed by ORCA reports included), in a closed loop at
 * concurrency 32 and in open loops at 30 % and 10 % of round_robin's measured
 * capacity. The limit any picker can approach: round_robin over the 4 healthy
 * replicas alone, as if the slow one were invisible. Then two phases for
 * `etcd_peak_ewma`: recovery (the slow replica becomes fast) and a replica
 * failing fast.
 */
import { count, ms, percent, ratio } from '../format';
import { PERCENTILES } from '../latency';
import { closedLoop, openLoop } from '../load';
import { percentileLines, shares } from '../plots';
import { lbConfigOf, LEAST_REQUEST, PEAK_EWMA, PICK_FIRST, ROUND_ROBIN, WRR_ORCA, WRR_ORCA_CONFIG } from '../policies';
import { CAPACITY_CONCURRENCY, CAPACITY_RUNS, clientsFor, combineRuns, interleaved, latencyRow, openLoopTitle, prepareLatencyRun, type CombinedRuns, type RoundConfig } from '../rounds';
import { type Scenario, type ScenarioContext, type Table, type TargetCheck } from '../scenario';
import { measureFailingFast, measureRecovery, RECOVERED_SHARE, RECOVERY_WINDOW_MS, type FailingFastPhase, type RecoveryPhase } from './recovery-phases';

const SLOW_REPLICA = 'r3';
const SLOW_LATENCY_MS = 20;
const CLOSED_CONCURRENCY = 32;
const OPEN_LOAD_FRACTION = 0.3;
/**
 * A second open loop at a light load: on 2 shared cores, at 30 % of capacity the healthy replicas'
 * own p99 (CPU scheduling, GC) is already about 20 ms and hides a +20 ms replica; at 10 % it does not.
 */
const LIGHT_LOAD_FRACTION = 0.1;
const LIMIT = `${ROUND_ROBIN} over the 4 healthy (limit)`;
const SHAPES = ['closed', 'open', 'open-light'] as const;
type Shape = (typeof SHAPES)[number];

export interface SlowReplicaRow extends CombinedRuns {
  readonly config: string;
  readonly shape: Shape;
}

export interface SlowReplicaMetrics {
  readonly slowReplica: string;
  readonly slowLatencyMs: number;
  readonly closedConcurrency: number;
  /** round_robin closed-loop calls/s over the 5 healthy replicas, concurrency 50 (best of 3 runs). */
  readonly capacityCallsPerS: number;
  readonly openRatePerS: number;
  /** Rate of the light open loop (10 % of capacity). */
  readonly lightRatePerS: number;
  /** Length of each run (per policy, shape and round). */
  readonly runMs: number;
  /** Rounds of the closed loop; the open loops have `openRounds`. */
  readonly rounds: number;
  readonly openRounds: number;
  readonly rows: readonly SlowReplicaRow[];
  /** etcd_peak_ewma phases (absent when it is not registered). */
  readonly recovery?: RecoveryPhase;
  readonly failingFast?: FailingFastPhase;
}

function configs(context: ScenarioContext): RoundConfig[] {
  return [
    { label: ROUND_ROBIN, lbConfig: lbConfigOf(ROUND_ROBIN), healthyOnly: false },
    { label: PICK_FIRST, lbConfig: lbConfigOf(PICK_FIRST), healthyOnly: false },
    ...context.policies.map(policy => ({ label: policy, lbConfig: lbConfigOf(policy), healthyOnly: false })),
    { label: WRR_ORCA, lbConfig: WRR_ORCA_CONFIG, healthyOnly: false },
    { label: LIMIT, lbConfig: lbConfigOf(ROUND_ROBIN), healthyOnly: true },
  ];
}

/** Policies a `--quick` run leaves out of the open loops (they are latency-blind: the closed loop shows them). */
const QUICK_OPEN_SKIPS: readonly string[] = [PICK_FIRST, 'etcd_weighted_round_robin', 'etcd_weighted_random'];

/** The configurations of `shape`: every one, except that `--quick` open loops keep the latency/load-aware ones, round_robin and the limit. */
function configsOf(all: readonly RoundConfig[], context: ScenarioContext, shape: Shape): readonly RoundConfig[] {
  return context.quick && shape !== 'closed' ? all.filter(c => !QUICK_OPEN_SKIPS.includes(c.label)) : all;
}

/** Closed-loop rounds; open-loop figures are always the median of at least 3. */
function rounds(context: ScenarioContext, shape: Shape): number {
  if (context.quick) return shape === 'closed' ? 1 : 3;
  return 5;
}

function shapeTitle(m: SlowReplicaMetrics, shape: Shape): string {
  if (shape === 'closed') return `closed loop at concurrency ${m.closedConcurrency}`;
  return shape === 'open'
    ? openLoopTitle(m.openRatePerS, OPEN_LOAD_FRACTION, m.capacityCallsPerS)
    : openLoopTitle(m.lightRatePerS, LIGHT_LOAD_FRACTION, m.capacityCallsPerS);
}

const roundsOf = (m: SlowReplicaMetrics, shape: Shape): number => (shape === 'closed' ? m.rounds : m.openRounds ?? m.rounds);

function find(m: SlowReplicaMetrics, config: string, shape: Shape): SlowReplicaRow | undefined {
  return m.rows.find(r => r.config === config && r.shape === shape);
}

export const slowReplicaScenario: Scenario<SlowReplicaMetrics> = {
  name: 'slow-replica',
  title: 'One slow replica',
  method: `5 echo replicas on static addresses (r1…r5, in that order), ${SLOW_REPLICA} adds ${SLOW_LATENCY_MS} ms to every call. `
    + `Closed loop: ${CLOSED_CONCURRENCY} calls in flight. Open loop: calls due at a fixed rate of ${OPEN_LOAD_FRACTION * 100} % of `
    + `round_robin's capacity (best of ${CAPACITY_RUNS} closed-loop runs at concurrency ${CAPACITY_CONCURRENCY} over the 5 replicas, all healthy, measured first), `
    + `latency counted from when each call was due; and again at ${LIGHT_LOAD_FRACTION * 100} % ("open-light"), where the healthy `
    + 'replicas\' own tail on 2 shared cores no longer hides a +20 ms replica. The limit is round_robin over the 4 healthy replicas only. '
    + '`pick_first` sends everything to the first address that connects (r1, a healthy one; had the slow replica been first it would get all). '
    + `Open-loop figures are medians of at least 3 interleaved rounds. grpc-js \`weighted_round_robin\` gets the replicas' ORCA reports out of band (see overload). `
    + `Then, for ${PEAK_EWMA} at 30 %: the slow replica recovers after 1.5 s (time until a ${RECOVERY_WINDOW_MS} ms window gives it ≥ ${percent(RECOVERED_SHARE, 0)}, `
    + 'within 20 % of a fair 1/5), and it fails every call at once with UNAVAILABLE (no retries: its share of first attempts). '
    + `\`--quick\` leaves ${QUICK_OPEN_SKIPS.join(', ')} out of the open loops.`,

  steps(context) {
    const phases = context.policies.includes(PEAK_EWMA) ? 2 : 0;
    return 1 + SHAPES.reduce((sum, shape) => sum + rounds(context, shape) * configsOf(configs(context), context, shape).length, 0) + phases;
  },

  async run(context): Promise<SlowReplicaMetrics> {
    const { env } = context;
    const setup = await prepareLatencyRun(context, 'slow-replica', SLOW_REPLICA, [OPEN_LOAD_FRACTION, LIGHT_LOAD_FRACTION]);
    const { replicas, degraded: slow, capacity, ratesPerS: [openRatePerS, lightRatePerS], runMs, warmupMs } = setup;
    const list = configs(context);
    env.setBehaviour(slow, { latencyMs: SLOW_LATENCY_MS });
    const clients = await clientsFor(env, replicas, slow, list);
    const rows: SlowReplicaRow[] = [];
    try {
      for (const shape of SHAPES) {
        const shapeConfigs = configsOf(list, context, shape);
        const runs = await interleaved(shapeConfigs, rounds(context, shape), context.progress, `${shape} loop`, config => (shape === 'closed'
          ? closedLoop(clients.get(config)!, { concurrency: CLOSED_CONCURRENCY, durationMs: runMs, warmupMs })
          : openLoop(clients.get(config)!, { ratePerS: shape === 'open' ? openRatePerS : lightRatePerS, durationMs: runMs, warmupMs })));
        for (const config of shapeConfigs) rows.push({ config: config.label, shape, ...combineRuns(runs.get(config)!, SLOW_REPLICA) });
      }
      const ewmaConfig = list.find(c => c.label === PEAK_EWMA);
      let recovery: RecoveryPhase | undefined;
      let failingFast: FailingFastPhase | undefined;
      if (ewmaConfig) {
        const ewma = clients.get(ewmaConfig)!;
        context.progress.step(`${PEAK_EWMA}: the slow replica recovers`);
        recovery = await measureRecovery(ewma, env, slow, { latencyMs: SLOW_LATENCY_MS }, openRatePerS);
        context.progress.step(`${PEAK_EWMA}: a replica failing fast`);
        failingFast = await measureFailingFast(ewma, env, slow, openRatePerS, context.quick ? 2_000 : 5_000);
      }
      return {
        slowReplica: SLOW_REPLICA,
        slowLatencyMs: SLOW_LATENCY_MS,
        closedConcurrency: CLOSED_CONCURRENCY,
        capacityCallsPerS: capacity,
        openRatePerS,
        lightRatePerS,
        runMs,
        rounds: rounds(context, 'closed'),
        openRounds: rounds(context, 'open'),
        rows,
        recovery,
        failingFast,
      };
    } finally {
      for (const client of clients.values()) env.closeClient(client);
      env.setBehaviour(slow, {});
    }
  },

  tables(m) {
    return SHAPES.map((shape): Table => {
      const base = find(m, ROUND_ROBIN, shape);
      const limit = find(m, LIMIT, shape);
      return {
        title: `${shapeTitle(m, shape)}: latency and the slow replica's share`,
        columns: ['policy', ...PERCENTILES.map(p => p.label), 'p99 vs round_robin', 'p99 vs limit', 'slow share', 'calls/s', 'failed', 'p99 of each round'],
        rows: m.rows.filter(r => r.shape === shape).map(r => latencyRow(r.config, r, [base, limit], r.config === LIMIT)),
        note: `${roundsOf(m, shape) > 1 ? `median of ${roundsOf(m, shape)} rounds of ${(m.runMs / 1000).toFixed(1)} s` : `${(m.runMs / 1000).toFixed(1)} s`} per policy after warm-up `
          + `(order rotated each round; slow share over all rounds); ${m.slowReplica} is ${m.slowLatencyMs} ms slower.`,
      };
    });
  },

  plots(m) {
    const latency = SHAPES.map(shape => percentileLines({
      name: `slow-replica-${shape}-latency`,
      title: `Latency with one replica +${m.slowLatencyMs} ms, ${shapeTitle(m, shape)}`,
      data: m.rows.filter(r => r.shape === shape).flatMap(r => PERCENTILES.map(p => ({ percentile: p.label, series: r.config, ms: r.latencyMs[p.key] }))),
      seriesTitle: 'policy',
    }));
    const share = shares({
      name: 'slow-replica-shares',
      title: `Share per replica (${m.slowReplica} is +${m.slowLatencyMs} ms)`,
      data: m.rows.flatMap(r => {
        const total = Object.values(r.byServer).reduce((a, b) => a + b, 0);
        return Object.entries(r.byServer).map(([replica, n]) => ({ whole: `${r.config} · ${r.shape}`, part: replica, share: total === 0 ? 0 : n / total }));
      }),
      partTitle: 'replica',
    });
    return [...latency, share];
  },

  targets(m) {
    const checks: TargetCheck[] = [];
    const rr = find(m, ROUND_ROBIN, 'closed');
    for (const policy of [LEAST_REQUEST, PEAK_EWMA]) {
      const row = find(m, policy, 'closed');
      checks.push({
        scenario: 'slow-replica',
        what: `closed loop: ${policy} p90 vs round_robin's`,
        target: '≤ 0.5×',
        measured: row && rr ? `${ratio(row.latencyMs.p90 / rr.latencyMs.p90)} (${ms(row.latencyMs.p90)} vs ${ms(rr.latencyMs.p90)}; slow share ${percent(row.affectedShare, 2)})` : 'n/a',
        met: row && rr ? row.latencyMs.p90 <= 0.5 * rr.latencyMs.p90 : undefined,
        note: row ? undefined : `${policy} is not registered`,
      });
    }
    const wrrNote = (shape: Shape): string | undefined => {
      const wrr = find(m, WRR_ORCA, shape);
      const limit = find(m, LIMIT, shape);
      return wrr && limit ? `${WRR_ORCA}: p99 ${ratio(wrr.latencyMs.p99 / limit.latencyMs.p99)} of the limit, slow share ${percent(wrr.affectedShare, 2)}` : undefined;
    };
    for (const [shape, limitRatio] of [['open', 1.15], ['open-light', 1.0]] as const) {
      const ewma = find(m, PEAK_EWMA, shape);
      const limit = find(m, LIMIT, shape);
      const fraction = shape === 'open' ? OPEN_LOAD_FRACTION : LIGHT_LOAD_FRACTION;
      checks.push({
        scenario: 'slow-replica',
        what: `open loop at ${fraction * 100} % of capacity: ${PEAK_EWMA} p99 vs the limit (round_robin over the 4 healthy)`,
        target: `≤ ${limitRatio.toFixed(2)}×`,
        measured: ewma && limit
          ? `${ratio(ewma.latencyMs.p99 / limit.latencyMs.p99)} (${ms(ewma.latencyMs.p99)} vs ${ms(limit.latencyMs.p99)}; slow share ${percent(ewma.affectedShare, 2)})`
          : 'n/a',
        met: ewma && limit ? ewma.latencyMs.p99 <= limitRatio * limit.latencyMs.p99 : undefined,
        note: ewma ? wrrNote(shape) : `${PEAK_EWMA} is not registered`,
      });
    }
    const open = find(m, PEAK_EWMA, 'open');
    checks.push({
      scenario: 'slow-replica',
      what: `open loop at ${OPEN_LOAD_FRACTION * 100} % of capacity: ${PEAK_EWMA} slow replica's share`,
      target: '< 0.5 %',
      measured: open ? percent(open.affectedShare, 2) : 'n/a',
      met: open ? open.affectedShare < 0.005 : undefined,
      note: open ? `least_request: ${percent(find(m, LEAST_REQUEST, 'open')?.affectedShare, 2)}; ${wrrNote('open') ?? ''}` : `${PEAK_EWMA} is not registered`,
    });
    checks.push({
      scenario: 'slow-replica',
      what: `${PEAK_EWMA}: a replica that recovers gets within 20 % of a fair share (1/5)`,
      target: '≤ 2 s',
      measured: m.recovery ? (m.recovery.recoveredAfterMs === null ? `not within 4 s (last window ${percent(m.recovery.finalShare)})` : `${(m.recovery.recoveredAfterMs / 1000).toFixed(2)} s`) : 'n/a',
      met: m.recovery ? m.recovery.recoveredAfterMs !== null && m.recovery.recoveredAfterMs <= 2_000 : undefined,
      note: m.recovery ? `judged on ${RECOVERY_WINDOW_MS} ms windows of calls sent after the recovery` : `${PEAK_EWMA} is not registered`,
    });
    checks.push({
      scenario: 'slow-replica',
      what: `${PEAK_EWMA}: a replica failing fast (UNAVAILABLE at once), its share of first attempts`,
      target: '< 1 %',
      measured: m.failingFast ? `${percent(m.failingFast.firstAttemptShare, 2)} of ${count(m.failingFast.calls)} calls` : 'n/a',
      met: m.failingFast ? m.failingFast.firstAttemptShare < 0.01 : undefined,
      note: m.failingFast ? undefined : `${PEAK_EWMA} is not registered`,
    });
    return checks;
  },
};
