/**
 * What the latency scenarios share: round_robin's capacity measured in the run,
 * interleaved rounds (each configuration once per round, the order rotated, so
 * a disturbance on the machine hits different configurations), and rows that
 * combine the rounds (percentiles: medians over rounds).
 */
import { type EchoClient } from '../test/support/echo-proto';
import { type BenchEnvironment } from './environment';
import { count, median } from './format';
import { type LatencySummary } from './latency';
import { closedLoop, type LoadResult } from './load';
import { lbConfigOf, ROUND_ROBIN } from './policies';
import { type ProgressSink } from './scenario';
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
