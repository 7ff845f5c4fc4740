/**
 * `slow-start`: a replica joins cold (slow for its first seconds, as a JVM or a
 * cache warming up would be) under steady open-loop load. How many calls does
 * it slow down, with `slowStart` and without, same policy
 * (`etcd_weighted_round_robin`), same run, interleaved repetitions?
 */
import { count, median, ms, percent } from '../format';
import { openLoop, type CallRecord, type LoadResult } from '../load';
import { groupedBars } from '../plots';
import { type Scenario, type ScenarioContext, type TargetCheck } from '../scenario';

const POLICY = 'etcd_weighted_round_robin';
const WINDOW_MS = 3000;
const RATE_PER_S = 400;
/** The joiner is slow for this long after its registration resolved… */
const SLOW_FOR_MS = 2000;
/** …by this much per call. */
const SLOW_EXTRA_MS = 50;
/**
 * A joiner's call sent while it is slow, and at least this slow, counts as slowed (healthy calls
 * take ~1 ms). Calls sent after the slow phase are not counted: on a busy machine some calls to
 * every replica take this long, and counting them would measure the noise, not the warm-up.
 */
const SLOWED_MS = SLOW_EXTRA_MS / 2;
const OBSERVE_MS = SLOW_FOR_MS + 1500;
const TARGET_RATIO = 0.5;

type Variant = 'without' | 'with';
const VARIANTS: readonly Variant[] = ['without', 'with'];

export interface SlowStartRow {
  readonly variant: Variant;
  /** Per repetition: calls the joiner served slowly. */
  readonly slowed: readonly number[];
  /** Per repetition: the joiner's share of calls while it was slow. */
  readonly slowShare: readonly number[];
  readonly medianSlowed: number;
  readonly p99Ms: readonly number[];
  readonly failed: number;
}

export interface SlowStartMetrics {
  readonly windowMs: number;
  readonly ratePerS: number;
  readonly slowForMs: number;
  readonly slowExtraMs: number;
  readonly repetitions: number;
  readonly rows: readonly SlowStartRow[];
  /** Median slowed calls with slow start / without. */
  readonly ratio: number;
}

function repetitions(context: ScenarioContext): number {
  return context.quick ? 1 : 3;
}

function lbConfig(variant: Variant): Record<string, object> {
  return { [POLICY]: variant === 'with' ? { slowStart: { windowMs: WINDOW_MS } } : {} };
}

export const slowStartScenario: Scenario<SlowStartMetrics> = {
  name: 'slow-start',
  title: 'Slow start: a cold replica joins',
  method: `Clients on \`etcd:///\` (${POLICY}) under an open loop of ${RATE_PER_S} calls/s over the 5 pool replicas. A new replica `
    + `process registers; it is ${SLOW_EXTRA_MS} ms slower per call for its first ${SLOW_FOR_MS} ms (from its registration), then `
    + `normal. Counted: its calls sent in that phase that took ≥ ${SLOWED_MS} ms ("slowed"); the load runs ${OBSERVE_MS} ms from the join. Without slow start it `
    + `gets its full 1/6 at once; with \`slowStart: { windowMs: ${WINDOW_MS} }\` its weight starts at 10 % and grows linearly `
    + '(Envoy\'s formula, recomputed every 300 ms). The two variants alternate, each repetition with a fresh joiner.',

  steps(context) {
    return VARIANTS.length * repetitions(context);
  },

  async run(context): Promise<SlowStartMetrics> {
    const { env } = context;
    const reps = repetitions(context);
    const results = new Map<Variant, { slowed: number[]; slowShare: number[]; p99Ms: number[]; failed: number }>(
      VARIANTS.map(v => [v, { slowed: [], slowShare: [], p99Ms: [], failed: 0 }]),
    );
    let serial = 0;
    for (let rep = 0; rep < reps; rep++) {
      for (const variant of VARIANTS) {
        context.progress.step(`${variant} slow start${reps > 1 ? ` (${rep + 1}/${reps})` : ''}`);
        await env.replicas();
        const name = `cold${++serial}`;
        let slowed = 0;
        let duringSlow = 0;
        let joinerDuringSlow = 0;
        let slowUntil = Infinity;
        let joinedAt = Infinity;
        const onCall = (call: CallRecord): void => {
          if (call.startMs < joinedAt) return;
          if (call.startMs >= slowUntil) return;
          duringSlow++;
          if (call.server !== name) return;
          joinerDuringSlow++;
          if (call.endMs - call.startMs >= SLOWED_MS) slowed++;
        };
        const client = env.client(env.etcdTarget, { lbConfig: lbConfig(variant) });
        const stop = new AbortController();
        let load: Promise<LoadResult> | undefined;
        try {
          await env.ready(client);
          load = openLoop(client, { ratePerS: RATE_PER_S, durationMs: 60_000, warmupMs: 0, onCall, signal: stop.signal });
          await new Promise(resolve => setTimeout(resolve, 500));
          const joiner = await env.spawnExtra(name, { behaviour: { latencyMs: SLOW_EXTRA_MS } });
          joinedAt = performance.now();
          slowUntil = joinedAt + SLOW_FOR_MS;
          await new Promise(resolve => setTimeout(resolve, SLOW_FOR_MS));
          joiner.setBehaviour({});
          await new Promise(resolve => setTimeout(resolve, OBSERVE_MS - SLOW_FOR_MS));
          stop.abort();
          const result = await load;
          load = undefined;
          const row = results.get(variant)!;
          row.slowed.push(slowed);
          row.slowShare.push(duringSlow === 0 ? 0 : joinerDuringSlow / duringSlow);
          row.p99Ms.push(result.latencyMs.p99);
          row.failed += result.failed;
          await joiner.shutdown({ deregisterGraceMs: 300, drainMs: 1000 });
        } finally {
          stop.abort();
          if (load) await load;
          env.closeClient(client);
        }
      }
    }
    const rows = VARIANTS.map((variant): SlowStartRow => {
      const r = results.get(variant)!;
      return { variant, slowed: r.slowed, slowShare: r.slowShare, medianSlowed: median(r.slowed), p99Ms: r.p99Ms, failed: r.failed };
    });
    const without = rows[0].medianSlowed;
    const ratio = without === 0 ? NaN : Math.round((rows[1].medianSlowed / without) * 1000) / 1000;
    return { windowMs: WINDOW_MS, ratePerS: RATE_PER_S, slowForMs: SLOW_FOR_MS, slowExtraMs: SLOW_EXTRA_MS, repetitions: reps, rows, ratio };
  },

  tables(m) {
    return [{
      title: `calls slowed by a cold joiner (${m.slowExtraMs} ms slower for ${m.slowForMs} ms), ${count(m.ratePerS)} calls/s, median of ${m.repetitions}`,
      columns: ['variant', 'slowed calls (median)', 'each run', "joiner's share while slow", 'p99 (each run)', 'failed calls'],
      rows: m.rows.map(r => [
        r.variant === 'with' ? `slowStart windowMs ${m.windowMs}` : 'no slow start',
        count(r.medianSlowed), r.slowed.map(count).join(' / '), r.slowShare.map(percent).join(' / '), r.p99Ms.map(ms).join(' / '), count(r.failed),
      ]),
      note: `With / without: ${Number.isNaN(m.ratio) ? 'n/a' : `${m.ratio.toFixed(2)}×`}. A fair share is 1/6 (16.7 %).`,
    }];
  },

  plots(m) {
    return [groupedBars({
      name: 'slow-start',
      title: 'Calls slowed by a cold joining replica',
      data: m.rows.map(r => ({ group: 'slowed calls (median)', series: r.variant === 'with' ? `slowStart ${m.windowMs} ms` : 'no slow start', value: r.medianSlowed })),
      groupTitle: '',
      valueTitle: 'calls',
      seriesTitle: 'variant',
    })];
  },

  targets(m): TargetCheck[] {
    return [{
      scenario: 'slow-start',
      what: `${POLICY}: calls slowed by a joiner slow for its first ${m.slowForMs / 1000} s, slowStart windowMs ${m.windowMs} vs none`,
      target: `≤ ${TARGET_RATIO}×`,
      measured: Number.isNaN(m.ratio) ? 'n/a' : `${m.ratio.toFixed(2)}× (${count(m.rows[1].medianSlowed)} vs ${count(m.rows[0].medianSlowed)})`,
      met: Number.isNaN(m.ratio) ? undefined : m.ratio <= TARGET_RATIO,
      note: 'issue 17',
    }];
  },
};
