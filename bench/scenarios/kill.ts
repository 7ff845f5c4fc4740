/**
 * `kill`: a replica is `kill -9`'d mid-run while the client calls through
 * `etcd:///`: failed calls, and milliseconds from the kill until no call
 * (attempt) goes to it any more. The dead replica's key stays in etcd (its lease
 * has not expired yet), as in production: the policy must route around it on
 * connectivity alone. A fresh replica replaces it before the next policy.
 *
 * The interceptor rows mark the method idempotent (`isIdempotent`), as the docs'
 * "0 failed calls" promise requires: a unary call then commits on its OK status, so a
 * replica killed after sending the response message but before the status is retried.
 * One more row runs the interceptor without it (commit at headers, gRFC A6): a call
 * caught in that gap fails, by design (the server did the work); it is reported, not
 * held to 0.
 */
import { seededRandom } from '../../test/support/wait';
import { count, ms } from '../format';
import { closedLoop, type CallRecord, type LoadResult } from '../load';
import { bars } from '../plots';
import { lbConfigOf, ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type TargetCheck } from '../scenario';

const VICTIM = 'r5';
const CONCURRENCY = 16;
/** Every replica takes this long per call, so that calls are in flight on the victim when it dies. */
const REPLICA_LATENCY_MS = 2;

/** One row of the scenario: a policy, with or without the interceptor. */
export interface KillConfig {
  readonly policy: string;
  readonly interceptor: boolean;
  /** With the interceptor: whether the method is marked idempotent (`isIdempotent`). */
  readonly idempotent: boolean;
}

export interface KillRow {
  readonly policy: string;
  readonly interceptor: boolean;
  /** Undefined in results saved before the non-idempotent row existed (they were all non-idempotent). */
  readonly idempotent?: boolean;
  readonly calls: number;
  readonly failed: number;
  readonly failedByCode: Readonly<Record<string, number>>;
  /** Attempts that ended on the victim after the kill (failed there, or retried elsewhere). */
  readonly attemptsOnVictimAfterKill: number;
  /** From the kill until the last attempt on the victim ended; 0 when none did after the kill. */
  readonly msUntilNoCallToVictim: number;
  readonly retries: number;
  readonly p99Ms: number;
}

export interface KillMetrics {
  readonly victim: string;
  readonly concurrency: number;
  readonly runMs: number;
  readonly killAtMs: number;
  readonly rows: readonly KillRow[];
}

function configs(context: ScenarioContext): KillConfig[] {
  return [
    { policy: ROUND_ROBIN, interceptor: false, idempotent: false },
    { policy: ROUND_ROBIN, interceptor: true, idempotent: true },
    ...context.policies.map(policy => ({ policy, interceptor: true, idempotent: true })),
    // The same interceptor without isIdempotent, under the first etcd_* policy.
    { policy: context.policies[0] ?? ROUND_ROBIN, interceptor: true, idempotent: false },
  ];
}

/** The rows held to 0 failed calls: the interceptor with the method marked idempotent, under each policy. */
export function idempotentKillConfigs(context: ScenarioContext): KillConfig[] {
  return configs(context).filter(c => c.interceptor && c.idempotent);
}

const label = (r: { policy: string; interceptor: boolean; idempotent?: boolean }): string =>
  !r.interceptor ? r.policy : `${r.policy} + retry interceptor${r.idempotent === true ? ' (idempotent)' : ' (not idempotent)'}`;

export const killScenario: Scenario<KillMetrics> = {
  name: 'kill',
  title: 'Replica killed (kill -9)',
  method: `5 echo replicas (each call takes ${REPLICA_LATENCY_MS} ms) resolved through \`etcd:///\`; closed loop at concurrency ${CONCURRENCY}; `
    + `${VICTIM} gets SIGKILL a third of the way into the run. Its key stays in etcd until its lease expires, as in production. `
    + '"ms until no call goes to it" runs from the kill to the end of the last attempt that went to it.',

  steps(context) {
    return configs(context).length;
  },

  run(context): Promise<KillMetrics> {
    return runKill(context, configs(context));
  },

  tables(m) {
    return [{
      title: `kill -9 of ${m.victim} ${(m.killAtMs / 1000).toFixed(1)} s into a ${(m.runMs / 1000).toFixed(1)} s closed loop at concurrency ${m.concurrency}`,
      columns: ['configuration', 'calls', 'failed', 'attempts on it after the kill', 'ms until no call goes to it', 'retries', 'p99'],
      rows: m.rows.map(r => [
        label(r), count(r.calls), count(r.failed), count(r.attemptsOnVictimAfterKill), ms(r.msUntilNoCallToVictim),
        r.interceptor ? count(r.retries) : '—', ms(r.p99Ms),
      ]),
    }];
  },

  plots(m) {
    return [bars({
      name: 'kill-failed-calls',
      title: `Failed calls when ${m.victim} is killed mid-run`,
      data: m.rows.map(r => ({ label: label(r), value: r.failed })),
      valueTitle: 'failed calls',
    })];
  },

  targets(m) {
    const checks: TargetCheck[] = m.rows.filter(r => r.interceptor && r.idempotent === true).map(r => ({
      scenario: 'kill',
      what: `failed calls, ${label(r)}`,
      target: '0',
      measured: `${count(r.failed)} of ${count(r.calls)}`,
      met: r.failed === 0,
    }));
    if (checks.length === 0) checks.push({ scenario: 'kill', what: 'failed calls with the retry interceptor (idempotent)', target: '0', measured: 'n/a', met: undefined });
    for (const r of m.rows.filter(row => row.interceptor && row.idempotent !== true)) {
      checks.push({
        scenario: 'kill',
        what: `failed calls, ${label(r)}`,
        target: 'reported',
        measured: `${count(r.failed)} of ${count(r.calls)}`,
        met: undefined,
        note: 'committed at headers (gRFC A6): a replica killed between the response message and the status fails the call, '
          + 'which the server processed; remedy: isIdempotent, or idempotencyKeys with createIdempotencyInterceptor on the servers (docs/idempotency.md)',
      });
    }
    return checks;
  },
};

/** Runs the kill scenario for `rows` (the scenario runs them all; a repeated check may run fewer). */
export async function runKill(context: ScenarioContext, rows: readonly KillConfig[]): Promise<KillMetrics> {
  const { env } = context;
  const runMs = context.quick ? 2_000 : 6_000;
  const warmupMs = 500;
  const killAtMs = Math.round(runMs / 3);
  const results: KillRow[] = [];
  for (const config of rows) {
    context.progress.step(label(config));
    const replicas = await env.replicas();
    for (const r of replicas) env.setBehaviour(r, { latencyMs: REPLICA_LATENCY_MS });
    const victim = replicas.find(r => r.name === VICTIM)!;
    let killedAt = Infinity;
    let lastOnVictim = -Infinity;
    let attemptsAfterKill = 0;
    let retries = 0;
    const onVictim = (endMs: number): void => {
      if (endMs < killedAt) return;
      attemptsAfterKill++;
      lastOnVictim = Math.max(lastOnVictim, endMs);
    };
    const client = env.client(env.etcdTarget, {
      lbConfig: lbConfigOf(config.policy),
      retryInterceptor: config.interceptor
        ? {
          random: seededRandom(context.seed),
          isIdempotent: config.idempotent ? () => true : undefined,
          onRetry: event => {
            retries++;
            if (event.peer === victim.address) onVictim(performance.now());
          },
        }
        : undefined,
    });
    try {
      await env.ready(client);
      const onCall = (call: CallRecord): void => {
        if (call.server === victim.name || (call.server === undefined && call.peer === victim.address)) onVictim(call.endMs);
      };
      const load: Promise<LoadResult> = closedLoop(client, { concurrency: CONCURRENCY, durationMs: runMs, warmupMs, onCall });
      await new Promise(resolve => setTimeout(resolve, warmupMs + killAtMs));
      killedAt = performance.now();
      await victim.kill('SIGKILL');
      const result = await load;
      results.push({
        policy: config.policy,
        interceptor: config.interceptor,
        idempotent: config.idempotent,
        calls: result.calls,
        failed: result.failed,
        failedByCode: result.failedByCode,
        attemptsOnVictimAfterKill: attemptsAfterKill,
        msUntilNoCallToVictim: Math.round(Math.max(0, lastOnVictim - killedAt) * 10) / 10,
        retries,
        p99Ms: result.latencyMs.p99,
      });
    } finally {
      env.closeClient(client);
      await env.replace(victim);
    }
  }
  return { victim: VICTIM, concurrency: CONCURRENCY, runMs, killAtMs, rows: results };
}
