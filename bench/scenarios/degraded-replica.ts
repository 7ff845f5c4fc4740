/**
 * The shape of the `overload` and `stalls` scenarios: 5 replicas, one degraded
 * (its behaviour set after capacity is measured), an open loop at a share of
 * round_robin's capacity measured in the run, latency per configuration as the
 * median of interleaved rounds. Configurations: grpc-js `round_robin`, our
 * latency/load-aware policies, grpc-js `weighted_round_robin` fed by the
 * replicas' ORCA reports (the load-aware peer), and the limit (round_robin
 * over the 4 healthy replicas alone, as if the degraded one were invisible).
 */
import { type EchoBehaviour } from '../../test/support/echo-server';
import { ms, percent, ratio } from '../format';
import { PERCENTILES } from '../latency';
import { openLoop } from '../load';
import { percentileLines, shares } from '../plots';
import { lbConfigOf, LEAST_REQUEST, PEAK_EWMA, ROUND_ROBIN, WRR_ORCA, WRR_ORCA_CONFIG } from '../policies';
import { clientsFor, combineRuns, interleaved, latencyRow, openLoopTitle, prepareLatencyRun, type CombinedRuns, type RoundConfig } from '../rounds';
import { type Scenario, type ScenarioContext, type ScenarioName } from '../scenario';
import { type ReplicaProcess } from '../../test/support/replica-process';
import { waitFor } from '../../test/support/wait';

export const DEGRADED_REPLICA = 'r3';
const LIMIT = `${ROUND_ROBIN} over the 4 healthy (limit)`;
/** Open loops of at least this many repetitions per configuration: each figure is their median. */
const ROUNDS = 3;
/** A queue left on the degraded replica by one run must not slow the next: wait for it to drain, this long at most. */
const DRAIN_TIMEOUT_MS = 15_000;

export interface DegradedRow extends CombinedRuns {
  readonly config: string;
}

export interface DegradedMetrics {
  readonly degradedReplica: string;
  /** round_robin closed-loop calls/s over the 5 replicas, all healthy (best of 3). */
  readonly capacityCallsPerS: number;
  readonly loadFraction: number;
  readonly openRatePerS: number;
  readonly runMs: number;
  readonly rounds: number;
  readonly rows: readonly DegradedRow[];
}

export interface DegradedShape {
  readonly name: ScenarioName;
  readonly title: string;
  /** What the degraded replica does, for the method text and table notes. */
  readonly what: string;
  readonly behaviour: EchoBehaviour;
  /** Share of capacity the open loop sends. */
  readonly loadFraction: number;
  /** Target of etcd_peak_ewma's p99 vs the limit, e.g. 1.2. */
  readonly limitRatio: number;
}

function configs(context: ScenarioContext): RoundConfig[] {
  const ours = [LEAST_REQUEST, PEAK_EWMA].filter(p => context.policies.includes(p));
  return [
    { label: ROUND_ROBIN, lbConfig: lbConfigOf(ROUND_ROBIN), healthyOnly: false },
    ...ours.map(policy => ({ label: policy, lbConfig: lbConfigOf(policy), healthyOnly: false })),
    { label: WRR_ORCA, lbConfig: WRR_ORCA_CONFIG, healthyOnly: false },
    { label: LIMIT, lbConfig: lbConfigOf(ROUND_ROBIN), healthyOnly: true },
  ];
}

async function drained(replica: ReplicaProcess): Promise<void> {
  // The replica reports its calls in flight every 250 ms.
  await waitFor(`${replica.name} to drain its queue`, () => replica.stats.inFlight === 0, { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 50 }).catch(() => undefined);
}

const find = (m: DegradedMetrics, config: string): DegradedRow | undefined => m.rows.find(r => r.config === config);

/** The scenario of `shape`. */
export function degradedReplicaScenario(shape: DegradedShape): Scenario<DegradedMetrics> {
  return {
    name: shape.name,
    title: shape.title,
    method: `5 echo replicas on static addresses (r1…r5), ${DEGRADED_REPLICA} ${shape.what}. Open loop at ${shape.loadFraction * 100} % of round_robin's `
      + 'capacity (best of 3 closed-loop runs at concurrency 50 over the 5 replicas, all healthy, measured first), latency counted from when each call '
      + `was due; each figure the median of ${ROUNDS} interleaved rounds (order rotated). grpc-js \`weighted_round_robin\` gets the replicas' ORCA `
      + 'reports out of band every 250 ms (`rps_fractional`, `eps`, `application_utilization`: the busy share of a replica\'s slots when it has a '
      + 'concurrency limit, else its event loop\'s), weights updated every 250 ms, blackout 500 ms. The limit is round_robin over the 4 healthy replicas only.',

    steps(context) {
      return 1 + ROUNDS * configs(context).length;
    },

    async run(context): Promise<DegradedMetrics> {
      const { env } = context;
      const { replicas, degraded, capacity, ratesPerS: [openRatePerS], runMs, warmupMs } = await prepareLatencyRun(context, shape.name, DEGRADED_REPLICA, [shape.loadFraction]);
      const list = configs(context);
      env.setBehaviour(degraded, shape.behaviour);
      const clients = await clientsFor(env, replicas, degraded, list);
      try {
        const runs = await interleaved(list, ROUNDS, context.progress, 'open loop',
          config => openLoop(clients.get(config)!, { ratePerS: openRatePerS, durationMs: runMs, warmupMs }),
          () => drained(degraded));
        return {
          degradedReplica: DEGRADED_REPLICA,
          capacityCallsPerS: capacity,
          loadFraction: shape.loadFraction,
          openRatePerS,
          runMs,
          rounds: ROUNDS,
          rows: list.map(config => ({ config: config.label, ...combineRuns(runs.get(config)!, DEGRADED_REPLICA) })),
        };
      } finally {
        for (const client of clients.values()) env.closeClient(client);
        env.setBehaviour(degraded, {});
      }
    },

    tables(m) {
      const limit = find(m, LIMIT);
      const wrr = find(m, WRR_ORCA);
      return [{
        title: `${openLoopTitle(m.openRatePerS, m.loadFraction, m.capacityCallsPerS)}, ${m.degradedReplica} ${shape.what}`,
        columns: ['policy', ...PERCENTILES.map(p => p.label), 'p99 vs limit', `p99 vs ${WRR_ORCA}`, `${m.degradedReplica} share`, 'calls/s', 'failed', 'p99 of each round'],
        rows: m.rows.map(r => latencyRow(r.config, r, [limit, wrr], r.config === LIMIT)),
        note: `median of ${m.rounds} interleaved rounds of ${(m.runMs / 1000).toFixed(1)} s per policy after warm-up (share and failures over all rounds).`,
      }];
    },

    plots(m) {
      return [
        percentileLines({
          name: `${shape.name}-latency`,
          title: `Latency, ${m.degradedReplica} ${shape.what}, ${openLoopTitle(m.openRatePerS, m.loadFraction, m.capacityCallsPerS)}`,
          data: m.rows.flatMap(r => PERCENTILES.map(p => ({ percentile: p.label, series: r.config, ms: r.latencyMs[p.key] }))),
          seriesTitle: 'policy',
        }),
        shares({
          name: `${shape.name}-shares`,
          title: `Share per replica (${m.degradedReplica} ${shape.what})`,
          data: m.rows.flatMap(r => {
            const total = Object.values(r.byServer).reduce((a, b) => a + b, 0);
            return Object.entries(r.byServer).map(([replica, n]) => ({ whole: r.config, part: replica, share: total === 0 ? 0 : n / total }));
          }),
          partTitle: 'replica',
        }),
      ];
    },

    targets(m) {
      const ewma = find(m, PEAK_EWMA);
      const limit = find(m, LIMIT);
      const wrr = find(m, WRR_ORCA);
      const rate = `${m.loadFraction * 100} % of capacity`;
      const missing = ewma ? undefined : `${PEAK_EWMA} is not registered`;
      return [{
        scenario: shape.name,
        what: `open loop at ${rate}: ${PEAK_EWMA} p99 vs the limit (round_robin over the 4 healthy)`,
        target: `≤ ${shape.limitRatio.toFixed(1)}×`,
        measured: ewma && limit ? `${ratio(ewma.latencyMs.p99 / limit.latencyMs.p99)} (${ms(ewma.latencyMs.p99)} vs ${ms(limit.latencyMs.p99)}; ${m.degradedReplica} share ${percent(ewma.affectedShare, 2)})` : 'n/a',
        met: ewma && limit ? ewma.latencyMs.p99 <= shape.limitRatio * limit.latencyMs.p99 : undefined,
        note: missing,
      }, {
        scenario: shape.name,
        what: `open loop at ${rate}: ${PEAK_EWMA} p99 vs grpc-js ${WRR_ORCA}`,
        target: '≤ 1.0×',
        measured: ewma && wrr ? `${ratio(ewma.latencyMs.p99 / wrr.latencyMs.p99)} (${ms(ewma.latencyMs.p99)} vs ${ms(wrr.latencyMs.p99)}; ${WRR_ORCA} ${m.degradedReplica} share ${percent(wrr.affectedShare, 2)})` : 'n/a',
        met: ewma && wrr ? ewma.latencyMs.p99 <= wrr.latencyMs.p99 : undefined,
        note: missing,
      }];
    },
  };
}
