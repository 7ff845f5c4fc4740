/**
 * `discovery`: how fast clients on `etcd:///` follow the registry. Under
 * steady open-loop load a new replica process registers itself
 * (`registerEndpoint`): milliseconds until the first call it serves. Then it
 * shuts down gracefully (`close()` deletes its key, then a grace period in which
 * it still serves): milliseconds from `close()` to the last call it serves.
 */
import { count, median, ms } from '../format';
import { openLoop, type CallRecord, type LoadResult } from '../load';
import { groupedBars } from '../plots';
import { lbConfigOf, ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type TargetCheck } from '../scenario';

const RATE_PER_S = 1_000;
const TARGET_MS = 250;
/** Grace the leaving replica keeps serving after deleting its key: longer than any figure we expect. */
const DEREGISTER_GRACE_MS = 1_000;
const SERVE_BEFORE_LEAVING_MS = 300;

export interface DiscoveryRow {
  readonly policy: string;
  /** Per repetition: `registerEndpoint` resolved → first call served by the new replica. */
  readonly joinMs: readonly number[];
  /** Per repetition: `close()` → last call served by the leaving replica. */
  readonly leaveMs: readonly number[];
  readonly medianJoinMs: number;
  readonly medianLeaveMs: number;
  readonly failed: number;
}

export interface DiscoveryMetrics {
  readonly ratePerS: number;
  readonly repetitions: number;
  readonly rows: readonly DiscoveryRow[];
}

function policies(context: ScenarioContext): string[] {
  return [ROUND_ROBIN, ...context.policies];
}

function repetitions(context: ScenarioContext): number {
  return context.quick ? 1 : 3;
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench discovery: ${what} did not happen within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const discoveryScenario: Scenario<DiscoveryMetrics> = {
  name: 'discovery',
  title: 'Discovery: join and leave',
  method: `Clients on \`etcd:///\` under an open loop of ${RATE_PER_S} calls/s over the 5 pool replicas. A new replica process `
    + 'starts and registers (`registerEndpoint` with the default TTL); the clock starts when its registration has resolved '
    + '(reported over IPC, sub-millisecond) and stops at the first reply it serves. After '
    + `${SERVE_BEFORE_LEAVING_MS} ms it shuts down gracefully (\`close()\` deletes the key, then it keeps serving for `
    + `${DEREGISTER_GRACE_MS} ms): the clock runs from \`close()\` to the last reply it serves. The resolver coalesces `
    + 'watch events for up to 50 ms (its default), which is part of both figures.',

  steps(context) {
    return policies(context).length * repetitions(context);
  },

  async run(context): Promise<DiscoveryMetrics> {
    const { env } = context;
    const reps = repetitions(context);
    const rows: DiscoveryRow[] = [];
    let serial = 0;
    for (const policy of policies(context)) {
      const joinMs: number[] = [];
      const leaveMs: number[] = [];
      let failed = 0;
      for (let rep = 0; rep < reps; rep++) {
        context.progress.step(`${policy}${reps > 1 ? ` (${rep + 1}/${reps})` : ''}`);
        await env.replicas();
        const name = `new${++serial}`;
        let firstServed: number | undefined;
        let lastServed = -Infinity;
        let sawFirst: () => void = () => {};
        const firstSeen = new Promise<void>(resolve => { sawFirst = resolve; });
        const onCall = (call: CallRecord): void => {
          if (call.server !== name) return;
          firstServed ??= call.endMs;
          lastServed = Math.max(lastServed, call.endMs);
          sawFirst();
        };
        const client = env.client(env.etcdTarget, { lbConfig: lbConfigOf(policy) });
        const stop = new AbortController();
        let load: Promise<LoadResult> | undefined;
        try {
          await env.ready(client);
          load = openLoop(client, { ratePerS: RATE_PER_S, durationMs: 60_000, warmupMs: 0, onCall, signal: stop.signal });
          await new Promise(resolve => setTimeout(resolve, 300));
          const joiner = await env.spawnExtra(name);
          const registeredAt = performance.now();
          await withTimeout(firstSeen, 10_000, `a call served by ${name}`);
          joinMs.push(Math.round((firstServed! - registeredAt) * 10) / 10);
          await new Promise(resolve => setTimeout(resolve, SERVE_BEFORE_LEAVING_MS));
          const closedAt = performance.now();
          await withTimeout(joiner.shutdown({ deregisterGraceMs: DEREGISTER_GRACE_MS, drainMs: 2_000 }), 15_000, `${name} shutting down`);
          leaveMs.push(Math.round(Math.max(0, lastServed - closedAt) * 10) / 10);
        } finally {
          stop.abort();
          if (load) failed += (await load).failed;
          env.closeClient(client);
        }
      }
      rows.push({ policy, joinMs, leaveMs, medianJoinMs: median(joinMs), medianLeaveMs: median(leaveMs), failed });
    }
    return { ratePerS: RATE_PER_S, repetitions: reps, rows };
  },

  tables(m) {
    return [{
      title: `replica joins and leaves under ${count(m.ratePerS)} calls/s (median of ${m.repetitions})`,
      columns: ['policy', 'registered → first call served', 'close() → last call served', 'each join', 'each leave', 'failed calls'],
      rows: m.rows.map(r => [r.policy, ms(r.medianJoinMs), ms(r.medianLeaveMs), r.joinMs.map(ms).join(' / '), r.leaveMs.map(ms).join(' / '), count(r.failed)]),
    }];
  },

  plots(m) {
    return [groupedBars({
      name: 'discovery',
      title: 'Discovery: ms from registration to first call, and from close() to last call',
      data: m.rows.flatMap(r => [
        { group: 'join: registered → first call', series: r.policy, value: r.medianJoinMs },
        { group: 'leave: close() → last call', series: r.policy, value: r.medianLeaveMs },
      ]),
      groupTitle: '',
      valueTitle: 'ms (median)',
      seriesTitle: 'policy',
      rule: { value: TARGET_MS, label: `target ${TARGET_MS} ms` },
    })];
  },

  targets(m) {
    const ours = m.rows.filter(r => r.policy !== ROUND_ROBIN);
    const checks: TargetCheck[] = [];
    for (const [what, key] of [['join: registered → first call served', 'medianJoinMs'], ['leave: close() → last call served', 'medianLeaveMs']] as const) {
      const worst = ours.reduce<DiscoveryRow | undefined>((a, b) => (a === undefined || b[key] > a[key] ? b : a), undefined);
      checks.push({
        scenario: 'discovery',
        what: `${what}, slowest etcd_* policy`,
        target: `≤ ${TARGET_MS} ms`,
        measured: worst ? `${ms(worst[key])} (${worst.policy})` : 'n/a',
        met: worst ? worst[key] <= TARGET_MS : undefined,
      });
    }
    return checks;
  },
};
