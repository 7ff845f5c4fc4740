/**
 * `weights`: replicas registered with weights 1:2:3:4 (and a fifth at weight
 * 0, draining): each policy's observed share of calls against W(i)/ΣW, through
 * `etcd:///`. grpc-js `round_robin` ignores weights and is shown for reference.
 */
import { decodeEndpoint, endpointKey } from '../../src';
import { inspectBalancers } from '../../src/balancer/pool/balancer-diagnostics';
import { etcdctl } from '../../test/support/etcd';
import { waitFor } from '../../test/support/wait';
import { count, percent } from '../format';
import { closedLoop } from '../load';
import { groupedBars } from '../plots';
import { lbConfigOf, ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type TargetCheck } from '../scenario';

/** r1…r5; r5 drains. */
const WEIGHTS: Readonly<Record<string, number>> = Object.freeze({ r1: 1, r2: 2, r3: 3, r4: 4, r5: 0 });
const CONCURRENCY = 8;
/** Max deviation (percentage points) of a weighted policy's share from W(i)/ΣW that counts as following the weights. */
const FOLLOWS_WEIGHTS_PP = 2;

export interface WeightsRow {
  readonly policy: string;
  readonly calls: number;
  readonly failed: number;
  /** Observed share of successful calls per replica. */
  readonly shares: Readonly<Record<string, number>>;
  /** Largest |observed − expected| over the replicas, in percentage points. */
  readonly maxDeviationPp: number;
}

export interface WeightsMetrics {
  readonly weights: Readonly<Record<string, number>>;
  readonly expectedShares: Readonly<Record<string, number>>;
  readonly concurrency: number;
  readonly runMs: number;
  readonly rows: readonly WeightsRow[];
}

function expectedShares(): Record<string, number> {
  const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(WEIGHTS).map(([name, w]) => [name, w / total]));
}

function policies(context: ScenarioContext): string[] {
  return [...context.policies, ROUND_ROBIN];
}

export const weightsScenario: Scenario<WeightsMetrics> = {
  name: 'weights',
  title: 'Weights',
  method: `5 echo replicas registered in etcd with weights ${Object.entries(WEIGHTS).map(([n, w]) => `${n}=${w}`).join(', ')} `
    + `(weight 0 = draining: no calls while others can serve); clients resolve \`etcd:///\`; closed loop at concurrency ${CONCURRENCY}. `
    + 'Expected share W(i)/ΣW. grpc-js round_robin does not read weights (shown for reference). '
    + 'etcd_least_request follows weights only as far as load does: with instant replies few calls are outstanding, so its share is looser.',

  steps(context) {
    return policies(context).length;
  },

  async run(context): Promise<WeightsMetrics> {
    const { env } = context;
    const replicas = await env.replicas();
    const runMs = context.quick ? 1_500 : 5_000;
    const expected = expectedShares();
    const hosts = await env.etcdHosts();
    for (const r of replicas) env.setWeight(r, WEIGHTS[r.name]);
    // The registrations write the weights asynchronously: wait until etcd holds them all.
    await waitFor('weights written to etcd', () => replicas.every(r => {
      const value = etcdctl(hosts, ['get', '--print-value-only', endpointKey(env.service, r.address)]).trim();
      const decoded = value === '' ? undefined : decodeEndpoint(endpointKey(env.service, r.address), value);
      return decoded?.ok === true && decoded.endpoint.weight === WEIGHTS[r.name];
    }), { timeoutMs: 10_000, intervalMs: 50 });
    const addresses = replicas.map(r => r.address).sort().join(',');
    const rows: WeightsRow[] = [];
    for (const policy of policies(context)) {
      context.progress.step(policy);
      const client = env.client(env.etcdTarget, { lbConfig: lbConfigOf(policy) });
      try {
        await env.ready(client);
        if (policy !== ROUND_ROBIN) {
          await waitFor(`${policy} sees the weights and 5 READY endpoints`, () => inspectBalancers().some(b => b.policy === policy
            && b.endpoints.map(e => e.address).sort().join(',') === addresses
            && b.endpoints.every(e => e.state === 'READY' && e.weight === WEIGHTS[replicas.find(r => r.address === e.address)!.name])), { timeoutMs: 10_000 });
        }
        const result = await closedLoop(client, { concurrency: CONCURRENCY, durationMs: runMs, warmupMs: 300 });
        const shares = Object.fromEntries(Object.keys(WEIGHTS).map(name => [name, result.ok === 0 ? 0 : (result.byServer[name] ?? 0) / result.ok]));
        const maxDeviationPp = Math.max(...Object.keys(WEIGHTS).map(name => Math.abs(shares[name] - expected[name]) * 100));
        rows.push({ policy, calls: result.calls, failed: result.failed, shares, maxDeviationPp: Math.round(maxDeviationPp * 100) / 100 });
      } finally {
        env.closeClient(client);
      }
    }
    return { weights: WEIGHTS, expectedShares: expected, concurrency: CONCURRENCY, runMs, rows };
  },

  tables(m) {
    const names = Object.keys(m.weights);
    return [{
      title: `share of calls per replica vs W(i)/ΣW (weights ${names.map(n => m.weights[n]).join(':')})`,
      columns: ['policy', ...names.map(n => `${n} (w=${m.weights[n]})`), 'max deviation', 'calls', 'failed'],
      rows: [
        ['expected', ...names.map(n => percent(m.expectedShares[n])), '—', '—', '—'],
        ...m.rows.map(r => [r.policy, ...names.map(n => percent(r.shares[n])), `${r.maxDeviationPp.toFixed(2)} pp`, count(r.calls), count(r.failed)]),
      ],
      note: `${(m.runMs / 1000).toFixed(1)} s closed loop at concurrency ${m.concurrency} per policy.`,
    }];
  },

  plots(m) {
    const names = Object.keys(m.weights);
    return [groupedBars({
      name: 'weights-shares',
      title: `Share per replica with weights ${names.map(n => m.weights[n]).join(':')}`,
      data: [
        ...names.map(n => ({ group: `${n} (w=${m.weights[n]})`, series: 'expected W(i)/ΣW', value: m.expectedShares[n] })),
        ...m.rows.flatMap(r => names.map(n => ({ group: `${n} (w=${m.weights[n]})`, series: r.policy, value: r.shares[n] }))),
      ],
      groupTitle: 'replica',
      valueTitle: 'share of successful calls',
      seriesTitle: 'policy',
    })];
  },

  targets(m) {
    return m.rows.filter(r => r.policy === 'etcd_weighted_round_robin' || r.policy === 'etcd_weighted_random').map((r): TargetCheck => ({
      scenario: 'weights',
      what: `${r.policy}: largest deviation of a replica's share from W(i)/ΣW`,
      target: `≤ ${FOLLOWS_WEIGHTS_PP} pp`,
      measured: `${r.maxDeviationPp.toFixed(2)} pp over ${count(r.calls)} calls`,
      met: r.maxDeviationPp <= FOLLOWS_WEIGHTS_PP,
      note: 'not an issue-7 target: a sanity bound set by the bench',
    }));
  },
};
