/**
 * What the latency scenarios share: round_robin's capacity measured in the run,
 * interleaved rounds (each configuration once per round, the order rotated, so
 * a disturbance on the machine hits different configurations), and rows that
 * combine the rounds (percentiles: medians over rounds).
 */
import { type EchoClient } from '../test/support/echo-proto';
import { type BenchEnvironment } from './environment';
import { count, median, ms, percent, ratio } from './format';
import { PERCENTILES, type LatencySummary } from './latency';
import { closedLoop, type LoadResult } from './load';
import { lbConfigOf, ROUND_ROBIN } from './policies';
import { type ProgressSink, type ScenarioContext } from './scenario';
import { type ReplicaProcess } from '../test/support/replica-process';

/** Capacity is the best of this many closed-loop runs: whatever else the machine does only ever lowers a run. */
export const CAPACITY_RUNS = 3;
export const CAPACITY_CONCURRENCY = 50;

/** round_robin closed-loop calls/s over `replicas` (all healthy), best of `CAPACITY_RUNS`. */
export async function measureCapacity(env: BenchEnvironment, replicas: readonly ReplicaProcess[], quick: boolean): Promise<{ capacity: number; runs: number[] }> {
  const client = env.client(env.staticTarget(replicas), { lbConfig: lbConfigOf(ROUND_ROBIN) });
  try {
    await env.ready(client);
    const runs: number[] = [];
    for (let i = 0; i < CAPACITY_RUNS; i++) {
      runs.push((await closedLoop(client, { concurrency: CAPACITY_CONCURRENCY, durationMs: quick ? 600 : 2_000, warmupMs: 200 })).callsPerS);
    }
    return { capacity: Math.max(...runs), runs };
  } finally {
    env.closeClient(client);
  }
}

/** One configuration of a latency scenario: a policy over the pool, or over the healthy replicas alone (the limit). */
export interface RoundConfig {
  readonly label: string;
  readonly lbConfig: object;
  readonly healthyOnly: boolean;
}

/** Percentiles and rate of the runs of one configuration (medians over rounds), counts totals. */
export interface CombinedRuns {
  readonly latencyMs: LatencySummary;
  /** p99 of each round, in round order. */
  readonly roundsP99Ms: readonly number[];
  /** `affected` replica's share of successful calls. */
  readonly affectedShare: number;
  readonly callsPerS: number;
  readonly failed: number;
  readonly byServer: Readonly<Record<string, number>>;
}

export function combineRuns(runs: readonly LoadResult[], affected: string): CombinedRuns {
  const mid = (pick: (r: LoadResult) => number): number => median(runs.map(pick));
  const byServer: Record<string, number> = {};
  for (const run of runs) for (const [name, n] of Object.entries(run.byServer)) byServer[name] = (byServer[name] ?? 0) + n;
  const ok = runs.reduce((sum, r) => sum + r.ok, 0);
  return {
    latencyMs: {
      p50: mid(r => r.latencyMs.p50),
      p90: mid(r => r.latencyMs.p90),
      p99: mid(r => r.latencyMs.p99),
      p999: mid(r => r.latencyMs.p999),
      max: Math.max(...runs.map(r => r.latencyMs.max)),
      mean: mid(r => r.latencyMs.mean),
      count: runs.reduce((sum, r) => sum + r.latencyMs.count, 0),
    },
    roundsP99Ms: runs.map(r => r.latencyMs.p99),
    affectedShare: ok === 0 ? 0 : (byServer[affected] ?? 0) / ok,
    callsPerS: Math.round(mid(r => r.callsPerS)),
    failed: runs.reduce((sum, r) => sum + r.failed, 0),
    byServer,
  };
}

/** A client per configuration (the limit's over every replica but `affected`), each READY. */
export async function clientsFor(env: BenchEnvironment, replicas: readonly ReplicaProcess[], affected: ReplicaProcess, configs: readonly RoundConfig[]): Promise<Map<RoundConfig, EchoClient>> {
  const clients = new Map<RoundConfig, EchoClient>();
  for (const config of configs) {
    const client = env.client(env.staticTarget(config.healthyOnly ? replicas.filter(r => r !== affected) : replicas), { lbConfig: config.lbConfig });
    clients.set(config, client);
    await env.ready(client);
  }
  return clients;
}

/**
 * Runs `load` for every configuration, `rounds` times, interleaved (order rotated each round);
 * `between` runs after each run (e.g. to let a queue drain). Returns each configuration's runs.
 */
export async function interleaved(
  configs: readonly RoundConfig[],
  rounds: number,
  progress: ProgressSink,
  stepLabel: string,
  load: (config: RoundConfig) => Promise<LoadResult>,
  between?: () => Promise<void>,
): Promise<Map<RoundConfig, LoadResult[]>> {
  const runs = new Map<RoundConfig, LoadResult[]>(configs.map(config => [config, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < configs.length; k++) {
      const config = configs[(k + r) % configs.length];
      progress.step(`${stepLabel}${rounds > 1 ? ` round ${r + 1}/${rounds}` : ''}: ${config.label}`);
      runs.get(config)!.push(await load(config));
      await between?.();
    }
  }
  return runs;
}

/** "open loop at 1,234 calls/s (30 % of round_robin's 4,113)". */
export function openLoopTitle(ratePerS: number, fraction: number, capacity: number): string {
  return `open loop at ${count(ratePerS)} calls/s (${fraction * 100} % of round_robin's ${count(capacity)})`;
}

/** What a latency scenario starts from: the pool, its degraded replica, round_robin's capacity and the open-loop rates. */
export interface LatencyRunSetup {
  readonly replicas: readonly ReplicaProcess[];
  readonly degraded: ReplicaProcess;
  readonly capacity: number;
  /** One per fraction asked for: `fraction × capacity` calls/s (at least 20). */
  readonly ratesPerS: readonly number[];
  readonly runMs: number;
  readonly warmupMs: number;
}

/** The pool in its default state, round_robin's capacity over all 5 (reported), and the rates at `fractions` of it. */
export async function prepareLatencyRun(context: ScenarioContext, scenario: string, degradedName: string, fractions: readonly number[]): Promise<LatencyRunSetup> {
  const replicas = await context.env.replicas();
  const degraded = replicas.find(r => r.name === degradedName);
  if (degraded === undefined) throw new Error(`bench ${scenario}: no replica named ${degradedName}`);
  context.progress.step('round_robin capacity, all healthy');
  const { capacity, runs } = await measureCapacity(context.env, replicas, context.quick);
  const ratesPerS = fractions.map(f => Math.max(20, Math.round(capacity * f)));
  context.progress.note(`${scenario}: round_robin capacity ${count(capacity)} calls/s (runs: ${runs.map(count).join(', ')}); open loops at ${ratesPerS.map(count).join(' and ')} calls/s`);
  return { replicas, degraded, capacity, ratesPerS, runMs: context.quick ? 1_000 : 3_000, warmupMs: context.quick ? 300 : 500 };
}

/**
 * A table row: `label`, the percentiles, p99 as a ratio of each of `baselines`', the degraded replica's
 * share (`—` for the limit, which has none), calls/s, failures and each round's p99.
 */
export function latencyRow(label: string, row: CombinedRuns, baselines: ReadonlyArray<CombinedRuns | undefined>, isLimit: boolean): string[] {
  return [
    label,
    ...PERCENTILES.map(p => ms(row.latencyMs[p.key])),
    ...baselines.map(base => ratio(base ? row.latencyMs.p99 / base.latencyMs.p99 : undefined)),
    isLimit ? '—' : percent(row.affectedShare, 2),
    count(row.callsPerS),
    count(row.failed),
    row.roundsP99Ms.map(ms).join(' / '),
  ];
}
