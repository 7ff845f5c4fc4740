/**
 * `failing-replica`: one of 5 replicas fails half its calls with UNAVAILABLE.
 * Error rate and latency with no retries, with grpc-js's built-in retryPolicy,
 * and with our retry interceptor (which steers each retry away from replicas
 * the call already tried), per policy.
 */
import * as grpc from '@grpc/grpc-js';
import { seededRandom } from '../../test/support/wait';
import { count, ms, percent, ratio } from '../format';
import { PERCENTILES, type LatencySummary } from '../latency';
import { closedLoop } from '../load';
import { percentileLines } from '../plots';
import { lbConfigOf, LEAST_REQUEST, ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type TargetCheck } from '../scenario';

const FAILING_REPLICA = 'r2';
const FAIL_RATE = 0.5;
const CONCURRENCY = 16;

type Retry = 'none' | 'grpc-js retryPolicy' | 'retry interceptor';

interface Config {
  readonly policy: string;
  readonly retry: Retry;
}

export interface FailingReplicaRow {
  readonly policy: string;
  readonly retry: Retry;
  readonly calls: number;
  readonly failed: number;
  readonly errorRate: number;
  readonly failedByCode: Readonly<Record<string, number>>;
  /** Retries the interceptor made (its onRetry events); 0 otherwise. */
  readonly retries: number;
  readonly latencyMs: LatencySummary;
  readonly callsPerS: number;
}

export interface FailingReplicaMetrics {
  readonly failingReplica: string;
  readonly failRate: number;
  readonly concurrency: number;
  readonly runMs: number;
  readonly rows: readonly FailingReplicaRow[];
}

function configs(context: ScenarioContext): Config[] {
  const list: Config[] = [
    { policy: ROUND_ROBIN, retry: 'none' },
    { policy: ROUND_ROBIN, retry: 'grpc-js retryPolicy' },
    { policy: ROUND_ROBIN, retry: 'retry interceptor' },
  ];
  if (context.policies.includes(LEAST_REQUEST)) list.push({ policy: LEAST_REQUEST, retry: 'none' });
  for (const policy of context.policies) list.push({ policy, retry: 'retry interceptor' });
  return list;
}

const label = (r: { policy: string; retry: Retry }): string => (r.retry === 'none' ? r.policy : `${r.policy} + ${r.retry}`);

export const failingReplicaScenario: Scenario<FailingReplicaMetrics> = {
  name: 'failing-replica',
  title: 'One failing replica',
  method: `5 echo replicas on static addresses; ${FAILING_REPLICA} answers ${FAIL_RATE * 100} % of calls with UNAVAILABLE at once. `
    + `Closed loop at concurrency ${CONCURRENCY}. grpc-js's retryPolicy and our interceptor get the same figures (3 attempts, `
    + '25 ms initial backoff ×2 up to 1 s, retry on UNAVAILABLE, 100-token budget); the interceptor\'s jitter is seeded.',

  steps(context) {
    return configs(context).length;
  },

  async run(context): Promise<FailingReplicaMetrics> {
    const { env } = context;
    const replicas = await env.replicas();
    const runMs = context.quick ? 1_500 : 6_000;
    const failing = replicas.find(r => r.name === FAILING_REPLICA)!;
    env.setBehaviour(failing, { failRate: FAIL_RATE, failCode: grpc.status.UNAVAILABLE });
    const rows: FailingReplicaRow[] = [];
    try {
      for (const config of configs(context)) {
        context.progress.step(label(config));
        let retries = 0;
        const client = env.client(env.staticTarget(replicas), {
          lbConfig: lbConfigOf(config.policy),
          grpcRetry: config.retry === 'grpc-js retryPolicy',
          retryInterceptor: config.retry === 'retry interceptor' ? { random: seededRandom(context.seed), onRetry: () => { retries++; } } : undefined,
        });
        try {
          await env.ready(client);
          const result = await closedLoop(client, { concurrency: CONCURRENCY, durationMs: runMs, warmupMs: 300 });
          rows.push({
            policy: config.policy,
            retry: config.retry,
            calls: result.calls,
            failed: result.failed,
            errorRate: result.calls === 0 ? 0 : result.failed / result.calls,
            failedByCode: result.failedByCode,
            retries,
            latencyMs: result.latencyMs,
            callsPerS: result.callsPerS,
          });
        } finally {
          env.closeClient(client);
        }
      }
    } finally {
      env.setBehaviour(failing, {});
    }
    return { failingReplica: FAILING_REPLICA, failRate: FAIL_RATE, concurrency: CONCURRENCY, runMs, rows };
  },

  tables(m) {
    const base = m.rows[0];
    return [{
      title: `${m.failingReplica} fails ${m.failRate * 100} % with UNAVAILABLE: failed calls and latency (closed loop, concurrency ${m.concurrency})`,
      columns: ['configuration', 'calls', 'failed', 'error rate', 'retries', ...PERCENTILES.map(p => p.label), 'p99 vs round_robin', 'calls/s'],
      rows: m.rows.map(r => [
        label(r), count(r.calls), count(r.failed), percent(r.errorRate, 2), r.retry === 'retry interceptor' ? count(r.retries) : '—',
        ...PERCENTILES.map(p => ms(r.latencyMs[p.key])), ratio(r.latencyMs.p99 / base.latencyMs.p99), count(r.callsPerS),
      ]),
      note: `${(m.runMs / 1000).toFixed(1)} s per configuration; latency of successful calls (retries included).`,
    }];
  },

  plots(m) {
    return [percentileLines({
      name: 'failing-replica-latency',
      title: `Latency with ${m.failingReplica} failing ${m.failRate * 100} % (successful calls)`,
      data: m.rows.flatMap(r => PERCENTILES.map(p => ({ percentile: p.label, series: label(r), ms: r.latencyMs[p.key] }))),
      seriesTitle: 'configuration',
    })];
  },

  targets(m) {
    const checks: TargetCheck[] = m.rows.filter(r => r.retry === 'retry interceptor' && r.policy !== ROUND_ROBIN).map(r => ({
      scenario: 'failing-replica',
      what: `failed calls, ${label(r)}`,
      target: '0',
      measured: `${count(r.failed)} of ${count(r.calls)}`,
      met: r.failed === 0,
    }));
    if (checks.length === 0) checks.push({ scenario: 'failing-replica', what: 'failed calls with the retry interceptor', target: '0', measured: 'n/a', met: undefined, note: 'no etcd_* policy registered' });
    return checks;
  },
};
