/**
 * `throughput`: unary calls/s in a closed loop over the 5 healthy replicas,
 * grpc-js `round_robin` on static addresses (the baseline) against each of our
 * policies on the same addresses, and the whole stack: `etcd:///` resolver +
 * `etcd_least_request` + retry interceptor. The client is the bottleneck here
 * (echo replies are instant), so this measures what each piece costs the client.
 * Configurations alternate over rounds; each one's median round counts.
 */
import { seededRandom } from '../../test/support/wait';
import { type EchoClient } from '../../test/support/echo-proto';
import { count, median, ms, ratio } from '../format';
import { closedLoop, type LoadResult } from '../load';
import { groupedBars } from '../plots';
import { LEAST_REQUEST, lbConfigOf, ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext } from '../scenario';

const CONCURRENCY = 50;
const TARGET_RATIO = 0.97;
const FULL_STACK = `etcd:/// + ${LEAST_REQUEST} + retry interceptor`;

interface Config {
  readonly label: string;
  readonly policy: string;
  readonly viaEtcd: boolean;
  readonly interceptor: boolean;
}

export interface ThroughputRow {
  readonly config: string;
  /** Median over rounds. */
  readonly callsPerS: number;
  /** Each round's figure, in round order. */
  readonly roundsCallsPerS: readonly number[];
  /** `callsPerS` / round_robin's. */
  readonly ratio: number;
  /** Latency of the median round, ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failed: number;
}

export interface ThroughputMetrics {
  readonly concurrency: number;
  readonly rounds: number;
  readonly roundMs: number;
  readonly rows: readonly ThroughputRow[];
}

function configs(context: ScenarioContext): Config[] {
  const list: Config[] = [{ label: ROUND_ROBIN, policy: ROUND_ROBIN, viaEtcd: false, interceptor: false }];
  for (const policy of context.policies) list.push({ label: policy, policy, viaEtcd: false, interceptor: false });
  list.push({ label: `${ROUND_ROBIN} + retry interceptor`, policy: ROUND_ROBIN, viaEtcd: false, interceptor: true });
  if (context.policies.includes(LEAST_REQUEST)) list.push({ label: FULL_STACK, policy: LEAST_REQUEST, viaEtcd: true, interceptor: true });
  return list;
}

function rounds(context: ScenarioContext): number {
  return context.quick ? 3 : 5;
}

export const throughputScenario: Scenario<ThroughputMetrics> = {
  name: 'throughput',
  title: 'Throughput',
  method: `Closed loop, ${CONCURRENCY} calls in flight, 5 healthy echo replicas (no added latency), one client channel per `
    + 'configuration with its own connections. Static configurations use grpc-js\'s `ipv4:` resolver with the 5 addresses; '
    + `"${FULL_STACK}" resolves the same replicas from etcd. Every configuration warms up first; then configurations `
    + 'alternate over rounds (the order rotating each round) and each one\'s median round counts.',

  steps(context) {
    return (1 + rounds(context)) * configs(context).length;
  },

  async run(context): Promise<ThroughputMetrics> {
    const { env } = context;
    const replicas = await env.replicas();
    const list = configs(context);
    const roundCount = rounds(context);
    const roundMs = context.quick ? 800 : 3_000;
    const warmupMs = context.quick ? 500 : 1_500;
    const random = seededRandom(context.seed);
    const clients = new Map<Config, EchoClient>();
    const results = new Map<Config, LoadResult[]>();
    try {
      for (const config of list) {
        const client = env.client(config.viaEtcd ? env.etcdTarget : env.staticTarget(replicas), {
          lbConfig: lbConfigOf(config.policy),
          retryInterceptor: config.interceptor ? { random } : undefined,
        });
        await env.ready(client);
        clients.set(config, client);
        results.set(config, []);
      }
      // Every configuration warms up before any is measured: the first one would otherwise pay for the JIT of the whole call path.
      for (const config of list) {
        context.progress.step(`warm-up: ${config.label}`);
        await closedLoop(clients.get(config)!, { concurrency: CONCURRENCY, durationMs: 1, warmupMs });
      }
      for (let r = 0; r < roundCount; r++) {
        for (let k = 0; k < list.length; k++) {
          const config = list[(k + r) % list.length];
          context.progress.step(`round ${r + 1}/${roundCount}: ${config.label}`);
          const result = await closedLoop(clients.get(config)!, { concurrency: CONCURRENCY, durationMs: roundMs, warmupMs: 100 });
          results.get(config)!.push(result);
        }
      }
    } finally {
      for (const client of clients.values()) env.closeClient(client);
    }
    const medianOf = (config: Config): number => median(results.get(config)!.map(r => r.callsPerS));
    const baseline = medianOf(list[0]);
    const rows = list.map(config => {
      const all = results.get(config)!;
      const mid = medianOf(config);
      const closest = all.reduce((a, b) => (Math.abs(b.callsPerS - mid) < Math.abs(a.callsPerS - mid) ? b : a));
      return {
        config: config.label,
        callsPerS: Math.round(mid),
        roundsCallsPerS: all.map(r => r.callsPerS),
        ratio: Math.round((mid / baseline) * 1000) / 1000,
        p50Ms: closest.latencyMs.p50,
        p99Ms: closest.latencyMs.p99,
        failed: all.reduce((sum, r) => sum + r.failed, 0),
      };
    });
    return { concurrency: CONCURRENCY, rounds: roundCount, roundMs, rows };
  },

  tables(m) {
    return [{
      title: `unary calls/s, closed loop at concurrency ${m.concurrency} (ratio to round_robin)`,
      columns: ['configuration', 'calls/s', 'ratio', 'rounds', 'p50', 'p99', 'failed'],
      rows: m.rows.map(r => [r.config, count(r.callsPerS), ratio(r.ratio), r.roundsCallsPerS.map(count).join(' / '), ms(r.p50Ms), ms(r.p99Ms), count(r.failed)]),
      note: `median of ${m.rounds} rounds of ${(m.roundMs / 1000).toFixed(1)} s each; latency from the median round.`,
    }];
  },

  plots(m) {
    return [groupedBars({
      name: 'throughput',
      title: `Unary calls/s, closed loop at concurrency ${m.concurrency}`,
      data: m.rows.map(r => ({ group: 'calls/s', series: r.config, value: r.callsPerS })),
      groupTitle: '',
      valueTitle: 'calls/s',
      seriesTitle: 'configuration',
    })];
  },

  targets(m) {
    const row = m.rows.find(r => r.config === FULL_STACK);
    return [{
      scenario: 'throughput',
      what: `throughput of ${FULL_STACK} vs plain round_robin`,
      target: `≥ ${TARGET_RATIO}×`,
      measured: row ? `${ratio(row.ratio)} (${count(row.callsPerS)} vs ${count(m.rows[0].callsPerS)} calls/s)` : 'n/a',
      met: row ? row.ratio >= TARGET_RATIO : undefined,
      note: row ? undefined : `${LEAST_REQUEST} is not registered`,
    }];
  },
};
