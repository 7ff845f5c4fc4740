/**
 * `idempotency` (issue 28): what deduplication costs a call. Two replica processes with a
 * trivial handler, one behind `createIdempotencyInterceptor` with the etcd store (etcd on
 * loopback: a claim transaction, then the result put, per call), one without it. Both
 * clients stamp a fresh key per call (`idempotencyKeys`), so every call on the deduplicating
 * replica is a first sight. Latency at concurrency 1 (added p50/p99 = with − without, runs
 * paired within a round) and calls/s in a closed loop, same run.
 */
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src';
import { loadEcho, type EchoClient } from '../../test/support/echo-proto';
import { type CounterReplica, spawnCounterReplica } from '../../test/idempotency/counter-replicas';
import { count, median, ms, round } from '../format';
import { closedLoop, type LoadResult } from '../load';
import { bars } from '../plots';
import { type Scenario } from '../scenario';

const UNARY_PATH = '/grpc_etcd_lb.echo.Echo/Unary';
const THROUGHPUT_CONCURRENCY = 64;
/** Issue 28's targets. */
const TARGET_ADDED_P50_MS = 2;
const TARGET_CALLS_PER_S = 1000;

interface Round {
  readonly withoutP50Ms: number;
  readonly withoutP99Ms: number;
  readonly withP50Ms: number;
  readonly withP99Ms: number;
  readonly withoutCallsPerS: number;
  readonly withCallsPerS: number;
  readonly failed: number;
}

export interface IdempotencyMetrics {
  readonly rounds: readonly Round[];
  readonly roundMs: number;
  readonly concurrency: number;
  /** Medians over rounds. */
  readonly addedP50Ms: number;
  readonly addedP99Ms: number;
  readonly withoutP50Ms: number;
  readonly withP50Ms: number;
  readonly withoutCallsPerS: number;
  readonly withCallsPerS: number;
}

function roundsOf(quick: boolean): number {
  return quick ? 3 : 5;
}

export const idempotencyScenario: Scenario<IdempotencyMetrics> = {
  name: 'idempotency',
  title: 'Idempotency keys: the cost of deduplication',
  method: 'Two echo replica processes with a trivial handler: one behind `createIdempotencyInterceptor` with the etcd store '
    + '(the bench\'s etcd on loopback), one without the interceptor. Both clients use `createRetryInterceptor({ idempotencyKeys })`, '
    + 'so each call carries a fresh key and every call on the deduplicating replica claims a key and records its result in etcd. '
    + 'Each round measures latency at concurrency 1 (without, with, without: the added latency of the round is the with-run minus '
    + `the mean of the two without-runs) and calls/s in a closed loop at concurrency ${THROUGHPUT_CONCURRENCY} (with and without). `
    + 'Medians over rounds are reported.',

  steps(context) {
    return 2 + roundsOf(context.quick) * 5;
  },

  async run(context): Promise<IdempotencyMetrics> {
    const hosts = await context.env.etcdHosts();
    const roundMs = context.quick ? 1_000 : 2_000;
    const base = {
      etcdHosts: hosts,
      prefix: `_grpc_etcd_lb/idempotency-bench-${process.pid}/`,
      claimTtlSeconds: 5,
      loseRatio: 0,
      seed: context.seed,
      execLog: '',
      handlerDelayMs: 0,
    };
    const replicas: CounterReplica[] = [];
    const clients: EchoClient[] = [];
    try {
      replicas.push(await spawnCounterReplica({ ...base, name: 'without', dedup: false }));
      replicas.push(await spawnCounterReplica({ ...base, name: 'with', dedup: true }));
      context.progress.note(`replica processes: without interceptor pid ${replicas[0].pid}, with interceptor pid ${replicas[1].pid}`);
      const { Client } = loadEcho();
      for (const replica of replicas) {
        clients.push(new Client(replica.address, grpc.credentials.createInsecure(), {
          'grpc.use_local_subchannel_pool': 1,
          interceptors: [createRetryInterceptor({ idempotencyKeys: { methods: [UNARY_PATH] } })],
        }));
      }
      const [without, withDedup] = clients;
      for (const [i, client] of clients.entries()) {
        context.progress.step(`warm-up: ${replicas[i].config.name}`);
        await closedLoop(client, { concurrency: 8, durationMs: 1, warmupMs: context.quick ? 500 : 1_000 });
      }
      const rounds: Round[] = [];
      const latency = async (client: EchoClient, label: string): Promise<LoadResult> => {
        context.progress.step(label);
        return closedLoop(client, { concurrency: 1, durationMs: roundMs, warmupMs: 100 });
      };
      const throughput = async (client: EchoClient, label: string): Promise<LoadResult> => {
        context.progress.step(label);
        return closedLoop(client, { concurrency: THROUGHPUT_CONCURRENCY, durationMs: roundMs, warmupMs: 200 });
      };
      const total = roundsOf(context.quick);
      for (let r = 0; r < total; r++) {
        const label = `round ${r + 1}/${total}`;
        const before = await latency(without, `${label}: latency without`);
        const withRun = await latency(withDedup, `${label}: latency with`);
        const after = await latency(without, `${label}: latency without`);
        const tputWith = await throughput(withDedup, `${label}: calls/s with`);
        const tputWithout = await throughput(without, `${label}: calls/s without`);
        rounds.push({
          withoutP50Ms: (before.latencyMs.p50 + after.latencyMs.p50) / 2,
          withoutP99Ms: (before.latencyMs.p99 + after.latencyMs.p99) / 2,
          withP50Ms: withRun.latencyMs.p50,
          withP99Ms: withRun.latencyMs.p99,
          withoutCallsPerS: tputWithout.callsPerS,
          withCallsPerS: tputWith.callsPerS,
          failed: before.failed + withRun.failed + after.failed + tputWith.failed + tputWithout.failed,
        });
      }
      return {
        rounds,
        roundMs,
        concurrency: THROUGHPUT_CONCURRENCY,
        addedP50Ms: round(median(rounds.map(x => x.withP50Ms - x.withoutP50Ms)), 3),
        addedP99Ms: round(median(rounds.map(x => x.withP99Ms - x.withoutP99Ms)), 3),
        withoutP50Ms: round(median(rounds.map(x => x.withoutP50Ms)), 3),
        withP50Ms: round(median(rounds.map(x => x.withP50Ms)), 3),
        withoutCallsPerS: Math.round(median(rounds.map(x => x.withoutCallsPerS))),
        withCallsPerS: Math.round(median(rounds.map(x => x.withCallsPerS))),
      };
    } finally {
      for (const client of clients) client.close();
      await Promise.all(replicas.map(r => r.kill()));
    }
  },

  tables(m) {
    return [{
      title: 'deduplicated calls (etcd store) vs no idempotency interceptor',
      columns: ['round', 'p50 without', 'p50 with', 'p99 without', 'p99 with', `calls/s without (c=${m.concurrency})`, 'calls/s with', 'failed'],
      rows: [
        ...m.rounds.map((x, i) => [String(i + 1), ms(x.withoutP50Ms), ms(x.withP50Ms), ms(x.withoutP99Ms), ms(x.withP99Ms), count(x.withoutCallsPerS), count(x.withCallsPerS), count(x.failed)]),
        ['median', ms(m.withoutP50Ms), ms(m.withP50Ms), '', '', count(m.withoutCallsPerS), count(m.withCallsPerS), ''],
      ],
      note: `Latency at concurrency 1, ${(m.roundMs / 1000).toFixed(1)} s runs; added latency (median over rounds): p50 ${ms(m.addedP50Ms)}, p99 ${ms(m.addedP99Ms)}.`,
    }];
  },

  plots(m) {
    return [bars({
      name: 'idempotency',
      title: `Unary calls/s at concurrency ${m.concurrency}, with and without deduplication (median round)`,
      data: [{ label: 'without interceptor', value: m.withoutCallsPerS }, { label: 'etcd store', value: m.withCallsPerS }],
      valueTitle: 'calls/s',
    })];
  },

  targets(m) {
    return [{
      scenario: 'idempotency',
      what: 'p50 latency added by deduplication (etcd store, concurrency 1)',
      target: `≤ ${TARGET_ADDED_P50_MS} ms`,
      measured: `${ms(m.addedP50Ms)} (${ms(m.withP50Ms)} vs ${ms(m.withoutP50Ms)}; p99 +${ms(m.addedP99Ms)})`,
      met: m.addedP50Ms <= TARGET_ADDED_P50_MS,
    }, {
      scenario: 'idempotency',
      what: `deduplicated calls/s (etcd store, closed loop at concurrency ${m.concurrency})`,
      target: `≥ ${count(TARGET_CALLS_PER_S)}`,
      measured: `${count(m.withCallsPerS)} (without the interceptor: ${count(m.withoutCallsPerS)})`,
      met: m.withCallsPerS >= TARGET_CALLS_PER_S,
    }];
  },
};
