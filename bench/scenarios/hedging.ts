/**
 * `hedging` (issue 18): 5 replicas, open loop at 10 % of round_robin's capacity, two
 * latency shapes — independent (each call on each replica is +80 ms with probability
 * 3 %, seeded) and correlated (one replica at a time is +80 ms for 300 ms, rotating) —
 * and a budget phase (a +30 ms step on every replica). No hedging, grpc-js's own
 * `hedgingPolicy` (same delay, round_robin) and our interceptor (fixed and adaptive
 * delay). Extra attempts are counted by the replicas; each call carries an id, and the
 * replicas count ids they see twice (one call run twice on one replica).
 */
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src';
import { loadEcho, type EchoClient } from '../../test/support/echo-proto';
import { type EchoBehaviour } from '../../test/support/echo-server';
import { CALL_ID_HEADER, type ReplicaProcess } from '../../test/support/replica-process';
import { type BenchEnvironment } from '../environment';
import { count, ms, percent, ratio } from '../format';
import { PERCENTILES, type LatencySummary } from '../latency';
import { closedLoop, openLoop, type CallRecord } from '../load';
import { lines, percentileLines } from '../plots';
import { lbConfigOf, LEAST_REQUEST, ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type TargetCheck } from '../scenario';

const WRR = 'etcd_weighted_round_robin';
const ECHO_SERVICE = 'grpc_etcd_lb.echo.Echo';
const LOAD_FRACTION = 0.1;
const CAPACITY_CONCURRENCY = 50;
const SLOW_MS = 80;
const SPIKE_RATE = 0.03;
const TURN_MS = 300;
const STEP_MS = 30;
const MAX_HEDGE_RATIO = 0.1;
/**
 * The correlated shape's hedge budget for our rows: with one replica in five slow, round-robin
 * picking sends 20 % of calls there, and grpc-js (no hedge budget) hedges all of them; the
 * target compares the two at the same or lower extra load, so ours may spend as much.
 */
const CORRELATED_HEDGE_RATIO = 0.25;
/** Adaptive rows warm up for at least this many calls (the estimator needs 100 first attempts). */
const ADAPTIVE_WARMUP_CALLS = 150;
/** Replicas report their counters every 250 ms: after this long with no calls, the figures are final. */
const STATS_SETTLE_MS = 350;
const STEP_BUCKET_MS = 250;
const MIN_DELAY_MS = 2;
const MAX_DELAY_MS = 20;

const SHAPES = ['independent', 'correlated', 'all-slow'] as const;
type Shape = (typeof SHAPES)[number];
type Hedging = 'none' | 'grpc-js' | 'fixed' | 'adaptive';

interface Config {
  readonly label: string;
  readonly policy: string;
  readonly hedging: Hedging;
  readonly baseline: string;
  /** Our hedge budget when not the shape's (`ratioOf`). */
  readonly maxHedgeRatio?: number;
  /** Measured in full runs only. */
  readonly fullOnly?: boolean;
}

const NONE_RR = 'no hedging · round_robin';
const GRPC_JS = 'grpc-js hedgingPolicy · round_robin';
const OURS_WRR = `ours, fixed delay · ${WRR}`;
const NONE_LR = `no hedging · ${LEAST_REQUEST}`;
const OURS_FIXED = `ours, fixed delay · ${LEAST_REQUEST}`;
const OURS_ADAPTIVE = `ours, adaptive delay · ${LEAST_REQUEST}`;
const CONFIGS: readonly Config[] = [
  { label: NONE_RR, policy: ROUND_ROBIN, hedging: 'none', baseline: NONE_RR },
  { label: GRPC_JS, policy: ROUND_ROBIN, hedging: 'grpc-js', baseline: NONE_RR },
  // Equal weights: the same rotation as round_robin, so this row isolates the hedging difference.
  { label: OURS_WRR, policy: WRR, hedging: 'fixed', baseline: NONE_RR },
  { label: NONE_LR, policy: LEAST_REQUEST, hedging: 'none', baseline: NONE_LR },
  { label: OURS_FIXED, policy: LEAST_REQUEST, hedging: 'fixed', baseline: NONE_LR },
  { label: OURS_ADAPTIVE, policy: LEAST_REQUEST, hedging: 'adaptive', baseline: NONE_LR },
];
const OURS_FIXED_DEFAULT_BUDGET = `ours, fixed delay, maxHedgeRatio ${MAX_HEDGE_RATIO} · ${LEAST_REQUEST}`;
/** The correlated shape also shows our default budget, which 20 % of slow calls exceed. */
const CORRELATED_EXTRA: readonly Config[] = [
  { label: OURS_FIXED_DEFAULT_BUDGET, policy: LEAST_REQUEST, hedging: 'fixed', baseline: NONE_LR, maxHedgeRatio: MAX_HEDGE_RATIO, fullOnly: true },
];

function ratioOf(shape: Shape): number {
  return shape === 'correlated' ? CORRELATED_HEDGE_RATIO : MAX_HEDGE_RATIO;
}
const ALL_SLOW_CONFIGS = [GRPC_JS, OURS_FIXED];

export interface HedgingRow {
  readonly config: string;
  readonly shape: Shape;
  readonly latencyMs: LatencySummary;
  readonly calls: number;
  readonly failed: number;
  /** Calls sent, warm-up included (what the replicas' counts are compared with). */
  readonly sent: number;
  /** Attempts the replicas received for them. */
  readonly attempts: number;
  /** attempts / sent − 1. */
  readonly extra: number;
  /** Attempts whose call id the replica had already seen (the same call twice on one replica). */
  readonly repeats: number;
  readonly callsPerS: number;
}

export interface StepBucket {
  /** Bucket start, ms after the step (negative: before it). */
  readonly atMs: number;
  readonly calls: number;
  /** Hedges and retries of our interceptor in the bucket. */
  readonly extra: number;
}

export interface HedgingMetrics {
  readonly capacityCallsPerS: number;
  readonly ratePerS: number;
  /** The fixed delay (ours and grpc-js's): the p95 of no hedging · round_robin in the independent shape. */
  readonly delayMs: number;
  readonly runMs: number;
  readonly rows: readonly HedgingRow[];
  readonly step: {
    readonly config: string;
    readonly buckets: readonly StepBucket[];
    /** From 1 s after the step to the end. */
    readonly settled: { readonly calls: number; readonly extra: number; readonly windowMs: number };
    /** From the step to the end: successful calls per second, failed calls. */
    readonly okPerS: number;
    readonly failed: number;
  };
}

interface Tally {
  sent: number;
  extraAt: number[];
  /** Latencies of the measured successful calls, when asked for. */
  latencies: number[] | undefined;
}

/** Puts a unique id on each call (the replicas count ids they see twice). */
function callIds(prefix: string): grpc.Interceptor {
  let next = 0;
  return (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, start) {
      metadata.set(CALL_ID_HEADER, `${prefix}-${next++}`);
      start(metadata, listener);
    },
  });
}

function makeClient(env: BenchEnvironment, replicas: readonly ReplicaProcess[], config: Config, shape: Shape, delayMs: number, prefix: string, tally: Tally): EchoClient {
  const serviceConfig: Record<string, unknown> = { loadBalancingConfig: [lbConfigOf(config.policy)] };
  if (config.hedging === 'grpc-js') {
    serviceConfig.methodConfig = [{
      name: [{ service: ECHO_SERVICE }],
      hedgingPolicy: { maxAttempts: 2, hedgingDelay: `${(delayMs / 1000).toFixed(3)}s`, nonFatalStatusCodes: ['UNAVAILABLE'] },
    }];
    serviceConfig.retryThrottling = { maxTokens: 100, tokenRatio: 1 };
  }
  const interceptors = [callIds(prefix)];
  if (config.hedging === 'fixed' || config.hedging === 'adaptive') {
    const extra = (): void => { tally.extraAt.push(performance.now()); };
    interceptors.push(createRetryInterceptor({
      isIdempotent: () => true,
      hedging: { delayMs: config.hedging === 'fixed' ? delayMs : undefined, maxHedgeRatio: config.maxHedgeRatio ?? ratioOf(shape) },
      onHedge: extra,
      onRetry: extra,
    }));
  }
  const { Client } = loadEcho();
  return new Client(env.staticTarget(replicas), grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify(serviceConfig),
    'grpc.use_local_subchannel_pool': 1,
    interceptors,
  });
}

/** Sums of what the replicas report, after a quiet `STATS_SETTLE_MS`. */
async function settledCounts(replicas: readonly ReplicaProcess[]): Promise<{ calls: number; repeats: number }> {
  await new Promise(resolve => setTimeout(resolve, STATS_SETTLE_MS));
  return replicas.reduce((sum, r) => ({ calls: sum.calls + r.stats.calls, repeats: sum.repeats + r.stats.repeatedCallIds }), { calls: 0, repeats: 0 });
}

function behaviourOf(shape: Shape, index: number, seed: number): EchoBehaviour {
  if (shape === 'independent') return { spikes: { rate: SPIKE_RATE, extraMs: SLOW_MS, seed: seed * 100 + index } };
  if (shape === 'correlated') return { slowTurn: { index, count: 5, periodMs: TURN_MS, extraMs: SLOW_MS } };
  return { latencyMs: STEP_MS };
}

function find(m: HedgingMetrics, config: string, shape: Shape): HedgingRow | undefined {
  return m.rows.find(r => r.config === config && r.shape === shape);
}

function usable(context: ScenarioContext, shape: Shape): Config[] {
  const list = shape === 'correlated' ? [...CONFIGS, ...CORRELATED_EXTRA] : CONFIGS;
  return list.filter(c => (c.policy === ROUND_ROBIN || context.policies.includes(c.policy)) && !(c.fullOnly && context.quick));
}

function configOf(label: string): Config | undefined {
  return [...CONFIGS, ...CORRELATED_EXTRA].find(c => c.label === label);
}

function shapeTitle(m: HedgingMetrics, shape: Shape): string {
  const what = shape === 'independent' ? `independent: each call +${SLOW_MS} ms with p = ${SPIKE_RATE * 100} % (seeded)`
    : shape === 'correlated' ? `correlated: one replica at a time +${SLOW_MS} ms for ${TURN_MS} ms, rotating`
      : `every replica +${STEP_MS} ms`;
  return `${what}; open loop at ${count(m.ratePerS)} calls/s (${LOAD_FRACTION * 100} % of capacity), fixed delay ${ms(m.delayMs)}`;
}

export const hedgingScenario: Scenario<HedgingMetrics> = {
  name: 'hedging',
  title: 'Hedging: tail latency and extra load',
  method: `5 echo replicas on static addresses, open loop at ${LOAD_FRACTION * 100} % of round_robin's capacity (best of 2 closed-loop runs at `
    + `concurrency ${CAPACITY_CONCURRENCY}), latency counted from when each call was due. Shapes: independent (every call on every replica `
    + `+${SLOW_MS} ms with probability ${SPIKE_RATE * 100} %, a seeded PRNG per replica) and correlated (replica i is +${SLOW_MS} ms while `
    + `floor(t / ${TURN_MS} ms) mod 5 = i: one slow replica at a time, rotating). The fixed delay, for grpc-js's hedgingPolicy `
    + `(maxAttempts 2, round_robin) and ours alike, is the p95 of no hedging · round_robin in the independent shape (clamped to `
    + `${MIN_DELAY_MS}–${MAX_DELAY_MS} ms), measured first. Ours: hedging.maxAttempts 2, maxHedgeRatio ${MAX_HEDGE_RATIO} `
    + `(the default; ${CORRELATED_HEDGE_RATIO} in the correlated shape, where 1 call in 5 meets the slow replica under round-robin picking and `
    + `grpc-js hedges them all; a full run adds a ${MAX_HEDGE_RATIO} row there), every method idempotent; adaptive = p95 of the last 1,000 `
    + `first attempts, after a warm-up of at least ${ADAPTIVE_WARMUP_CALLS} calls. Extra attempts = attempts the replicas received / calls sent − 1 `
    + '(warm-up included); "twice on one replica" = attempts whose call id (a header) that replica had already seen, all replicas READY. '
    + `Budget: our fixed-delay client, then every replica +${STEP_MS} ms; hedges and retries counted per ${STEP_BUCKET_MS} ms; and, `
    + 'in a full run, a steady all-slow run of grpc-js and ours.',

  steps(context) {
    return 1 + usable(context, 'independent').length + usable(context, 'correlated').length + 1 + (context.quick ? 0 : ALL_SLOW_CONFIGS.length);
  },

  async run(context): Promise<HedgingMetrics> {
    const { env } = context;
    const replicas = await env.replicas();
    const runMs = context.quick ? 1_000 : 5_000;
    const warmupMs = context.quick ? 300 : 500;
    const clients: EchoClient[] = [];
    const rows: HedgingRow[] = [];
    const setAll = (shape: Shape | undefined): void => replicas.forEach((r, i) => env.setBehaviour(r, shape === undefined ? {} : behaviourOf(shape, i, context.seed)));
    try {
      context.progress.step('round_robin capacity');
      const capacityClient = env.client(env.staticTarget(replicas), { lbConfig: lbConfigOf(ROUND_ROBIN) });
      await env.ready(capacityClient);
      const capacityRuns: number[] = [];
      for (let i = 0; i < 2; i++) capacityRuns.push((await closedLoop(capacityClient, { concurrency: CAPACITY_CONCURRENCY, durationMs: context.quick ? 500 : 1_000, warmupMs: 200 })).callsPerS);
      env.closeClient(capacityClient);
      const capacity = Math.max(...capacityRuns);
      const ratePerS = Math.max(100, Math.round(capacity * LOAD_FRACTION));
      let counts = await settledCounts(replicas);
      let delayMs = MIN_DELAY_MS;

      const measure = async (config: Config, shape: Shape, tally: Tally = { sent: 0, extraAt: [], latencies: undefined }): Promise<HedgingRow> => {
        context.progress.step(`${shape}: ${config.label}`);
        const client = makeClient(env, replicas, config, shape, delayMs, `${shape}-${rows.length}`, tally);
        clients.push(client);
        await env.ready(client);
        const load = await openLoop(client, {
          ratePerS,
          durationMs: runMs,
          warmupMs: config.hedging === 'adaptive' ? Math.max(warmupMs, Math.ceil((ADAPTIVE_WARMUP_CALLS * 1000) / ratePerS)) : warmupMs,
          onCall: r => {
            tally.sent++;
            if (r.recorded && r.code === grpc.status.OK) tally.latencies?.push(r.endMs - r.startMs);
          },
        });
        client.close();
        const before = counts;
        counts = await settledCounts(replicas);
        const attempts = counts.calls - before.calls;
        return {
          config: config.label, shape, latencyMs: load.latencyMs, calls: load.calls, failed: load.failed, sent: tally.sent,
          attempts, extra: tally.sent === 0 ? 0 : attempts / tally.sent - 1, repeats: counts.repeats - before.repeats, callsPerS: load.callsPerS,
        };
      };

      for (const shape of ['independent', 'correlated'] as const) {
        setAll(shape);
        for (const config of usable(context, shape)) {
          const baseline = shape === 'independent' && config.label === NONE_RR;
          const tally: Tally = { sent: 0, extraAt: [], latencies: baseline ? [] : undefined };
          rows.push(await measure(config, shape, tally));
          if (baseline) {
            // "The Tail at Scale": hedge after the 95th-percentile latency.
            delayMs = Math.min(MAX_DELAY_MS, Math.max(MIN_DELAY_MS, Math.ceil(p95(tally.latencies!))));
            context.progress.note(`hedging: capacity ${count(capacity)} calls/s, open loop at ${count(ratePerS)} calls/s, fixed delay ${delayMs} ms`);
          }
        }
      }

      // Budget: a step on every replica under our fixed-delay client.
      context.progress.step(`budget: every replica +${STEP_MS} ms under ${OURS_FIXED}`);
      setAll(undefined);
      const stepConfig = configOf(OURS_FIXED)!;
      const tally: Tally = { sent: 0, extraAt: [], latencies: undefined };
      const client = makeClient(env, replicas, stepConfig, 'all-slow', delayMs, 'step', tally);
      clients.push(client);
      await env.ready(client);
      const beforeMs = context.quick ? 600 : 1_000;
      const afterMs = context.quick ? 2_000 : 3_000;
      const records: CallRecord[] = [];
      let stepAt = Infinity;
      const load = openLoop(client, { ratePerS, durationMs: beforeMs + afterMs, warmupMs, onCall: r => records.push(r) });
      setTimeout(() => { stepAt = performance.now(); setAll('all-slow'); }, warmupMs + beforeMs);
      await load;
      client.close();
      counts = await settledCounts(replicas);
      const endAt = Math.max(...records.map(r => r.startMs));
      const buckets: StepBucket[] = [];
      for (let at = -beforeMs; at < endAt - stepAt; at += STEP_BUCKET_MS) {
        const from = stepAt + at;
        const to = from + STEP_BUCKET_MS;
        buckets.push({ atMs: at, calls: records.filter(r => r.startMs >= from && r.startMs < to).length, extra: tally.extraAt.filter(t => t >= from && t < to).length });
      }
      const settledFrom = stepAt + 1_000;
      const afterStep = records.filter(r => r.startMs >= stepAt);
      const step = {
        config: OURS_FIXED,
        buckets,
        settled: {
          calls: records.filter(r => r.startMs >= settledFrom).length,
          extra: tally.extraAt.filter(t => t >= settledFrom).length,
          windowMs: Math.round(endAt - settledFrom),
        },
        okPerS: Math.round((afterStep.filter(r => r.code === grpc.status.OK).length * 1000) / Math.max(1, endAt - stepAt)),
        failed: afterStep.filter(r => r.code !== grpc.status.OK).length,
      };
      if (!context.quick) {
        for (const label of ALL_SLOW_CONFIGS) rows.push(await measure(configOf(label)!, 'all-slow'));
      }
      return { capacityCallsPerS: capacity, ratePerS, delayMs, runMs, rows, step };
    } finally {
      for (const client of clients) client.close();
      setAll(undefined);
    }
  },

  tables(m) {
    const shapeTables = SHAPES.filter(shape => m.rows.some(r => r.shape === shape)).map(shape => ({
      title: shapeTitle(m, shape),
      columns: ['configuration', ...PERCENTILES.map(p => p.label), 'p99 vs no hedging', 'p99.9 vs no hedging', 'extra attempts', 'twice on one replica', 'failed', 'calls/s'],
      rows: m.rows.filter(r => r.shape === shape).map(r => {
        const base = find(m, configOf(r.config)?.baseline ?? NONE_RR, shape);
        return [
          r.config, ...PERCENTILES.map(p => ms(r.latencyMs[p.key])),
          ratio(base ? r.latencyMs.p99 / base.latencyMs.p99 : undefined), ratio(base ? r.latencyMs.p999 / base.latencyMs.p999 : undefined),
          percent(r.extra), count(r.repeats), count(r.failed), count(r.callsPerS),
        ];
      }),
      note: `${(m.runMs / 1000).toFixed(1)} s per configuration after warm-up; "vs no hedging" compares with the same picking (round_robin for the `
        + `round_robin and ${WRR} rows, ${LEAST_REQUEST} for its rows); our hedge budget (maxHedgeRatio) ${ratioOf(shape)} unless the row says otherwise.`,
    }));
    const s = m.step;
    return [...shapeTables, {
      title: `Budget: every replica +${STEP_MS} ms at t = 0 under ${s.config} (fixed delay ${ms(m.delayMs)}, maxHedgeRatio ${MAX_HEDGE_RATIO})`,
      columns: ['t (ms after the step)', 'calls started', 'hedges + retries', 'extra share'],
      rows: s.buckets.map(b => [String(b.atMs), count(b.calls), count(b.extra), percent(b.calls === 0 ? undefined : b.extra / b.calls)]),
      note: `From 1 s after the step: ${count(s.settled.extra)} extra attempts for ${count(s.settled.calls)} calls (${percent(s.settled.extra / Math.max(1, s.settled.calls))}); `
        + `after the step ${count(s.okPerS)} successful calls/s of ${count(m.ratePerS)} offered, ${count(s.failed)} failed.`,
    }];
  },

  plots(m) {
    const latency = (['independent', 'correlated'] as const).map(shape => percentileLines({
      name: `hedging-${shape}-latency`,
      title: `Latency, ${shape} slow calls (+${SLOW_MS} ms)`,
      data: m.rows.filter(r => r.shape === shape).flatMap(r => PERCENTILES.map(p => ({ percentile: p.label, series: r.config, ms: r.latencyMs[p.key] }))),
      seriesTitle: 'configuration',
    }));
    const step = lines({
      name: 'hedging-budget-step',
      title: `Extra attempts per call around a +${STEP_MS} ms step on every replica (${m.step.config})`,
      data: m.step.buckets.map(b => ({ x: b.atMs, series: 'extra share', y: b.calls === 0 ? 0 : b.extra / b.calls })),
      xTitle: 'ms after the step',
      yTitle: 'hedges + retries per call',
      seriesTitle: '',
    });
    return [...latency, step];
  },

  targets(m) {
    const checks: TargetCheck[] = [];
    const adaptive = find(m, OURS_ADAPTIVE, 'independent');
    const fixed = find(m, OURS_FIXED, 'independent');
    const none = find(m, NONE_LR, 'independent');
    checks.push({
      scenario: 'hedging',
      what: `independent shape: ${OURS_ADAPTIVE} p99 vs no hedging (same policy), extra attempts`,
      target: '≤ 0.3×, ≤ 10 %',
      measured: adaptive && none
        ? `${ratio(adaptive.latencyMs.p99 / none.latencyMs.p99)} (${ms(adaptive.latencyMs.p99)} vs ${ms(none.latencyMs.p99)}), ${percent(adaptive.extra)}`
          + (fixed ? `; fixed delay ${ratio(fixed.latencyMs.p99 / none.latencyMs.p99)}, ${percent(fixed.extra)}` : '')
        : 'n/a',
      met: adaptive && none ? adaptive.latencyMs.p99 <= 0.3 * none.latencyMs.p99 && adaptive.extra <= 0.1 : undefined,
    });
    const ours = m.rows.filter(r => r.shape === 'independent' && r.config.startsWith('ours'));
    checks.push({
      scenario: 'hedging',
      what: 'independent shape: failed calls and calls run twice on one replica, ours',
      target: '0 and 0',
      measured: ours.length ? `${count(ours.reduce((s, r) => s + r.failed, 0))} failed, ${count(ours.reduce((s, r) => s + r.repeats, 0))} twice (grpc-js: ${count(find(m, GRPC_JS, 'independent')?.repeats ?? 0)} twice)` : 'n/a',
      met: ours.length ? ours.every(r => r.failed === 0 && r.repeats === 0) : undefined,
    });
    const grpcJs = find(m, GRPC_JS, 'correlated');
    const oursCorrelated = find(m, OURS_FIXED, 'correlated');
    const others = [find(m, OURS_WRR, 'correlated'), find(m, OURS_FIXED_DEFAULT_BUDGET, 'correlated')];
    checks.push({
      scenario: 'hedging',
      what: `correlated shape: ${OURS_FIXED} (maxHedgeRatio ${CORRELATED_HEDGE_RATIO}) p99.9 vs grpc-js hedgingPolicy's, at the same or lower extra load`,
      target: '≤ 1×, extra ≤ grpc-js\'s',
      measured: grpcJs && oursCorrelated
        ? `${ratio(oursCorrelated.latencyMs.p999 / grpcJs.latencyMs.p999)} (${ms(oursCorrelated.latencyMs.p999)} vs ${ms(grpcJs.latencyMs.p999)}), extra ${percent(oursCorrelated.extra)} vs ${percent(grpcJs.extra)}`
          + others.map(r => (r ? `; ${r.config}: ${ratio(r.latencyMs.p999 / grpcJs.latencyMs.p999)}, ${percent(r.extra)}` : '')).join('')
        : 'n/a',
      met: grpcJs && oursCorrelated ? oursCorrelated.latencyMs.p999 <= grpcJs.latencyMs.p999 && oursCorrelated.extra <= grpcJs.extra : undefined,
    });
    const s = m.step;
    const allowed = MAX_HEDGE_RATIO * s.settled.calls + 1;
    checks.push({
      scenario: 'hedging',
      what: `budget: every replica +${STEP_MS} ms, extra attempts from 1 s after the step, and throughput`,
      target: `≤ ${MAX_HEDGE_RATIO} per call (+1), ≥ 95 % of offered, 0 failed`,
      measured: `${count(s.settled.extra)} for ${count(s.settled.calls)} calls (${percent(s.settled.extra / Math.max(1, s.settled.calls))}); ${count(s.okPerS)} of ${count(m.ratePerS)} calls/s; ${count(s.failed)} failed`,
      met: s.settled.extra <= allowed && s.okPerS >= 0.95 * m.ratePerS && s.failed === 0,
    });
    return checks;
  },
};

/** Nearest-rank p95 (the load's summary has p90 and p99 only); 0 for no values. */
function p95(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = values.sort((a, b) => a - b);
  return sorted[Math.ceil(0.95 * sorted.length) - 1];
}
