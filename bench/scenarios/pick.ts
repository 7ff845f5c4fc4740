/**
 * `pick`: nanoseconds per pick of each policy's READY picker at 3 … 10,000
 * endpoints, against grpc-js `round_robin`'s picker over the same endpoints,
 * with fake subchannels (see fake-channel.ts). Each policy is measured in a child
 * process of its own with round_robin (pick-child.ts, pick-measure.ts): shared code
 * paths made polymorphic by other policies doubled the last policy's figure. Wall
 * time: run it on a quiet machine (CPU time would charge V8's concurrent GC threads).
 */
import { join } from 'node:path';
import { lastJsonLine, runTsChild } from '../../test/support/ts-child';
import { ns, ratio } from '../format';
import { lines } from '../plots';
import { ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type Table, type TargetCheck } from '../scenario';
import { referenceCosts, type PickRow } from './pick-measure';

export { type PickRow } from './pick-measure';

/** What `pick-child.ts` is asked to measure. */
export interface PickChildRequest {
  readonly policies: readonly string[];
  readonly sizes: readonly number[];
  readonly rounds: number;
  readonly targetMs: number;
}

/** Runs `pick-child.ts` in a fresh Node process (under tsx, as the bench runs) and returns its rows. */
async function measureInChild(request: PickChildRequest): Promise<{ rows: PickRow[]; iterations: string[] }> {
  const { stdout } = await runTsChild(join(__dirname, 'pick-child.ts'), {}, 600_000, [JSON.stringify(request)]);
  return lastJsonLine(stdout);
}

export const DEFAULT_PICK_SIZES: readonly number[] = Object.freeze([3, 100, 1_000, 10_000]);
/** The size the target is checked at. */
const TARGET_SIZE = 1_000;
const TARGET_RATIO = 1.5;
/** Issue 24: etcd_peak_ewma's pick (incl. call hooks) at `TARGET_SIZE` endpoints. */
const PEAK_EWMA_TARGET_NS = 500;

export interface PickMetrics {
  readonly rounds: number;
  readonly iterationsPerMeasurement: string;
  readonly rows: readonly PickRow[];
  /** Cost of building blocks a picker may use, measured the same way (for reading the figures). */
  readonly referenceNs: Readonly<Record<string, number>>;
}

export const pickScenario: Scenario<PickMetrics> = {
  name: 'pick',
  title: 'Pick cost',
  method: 'Each policy is created through grpc-js (`ChildLoadBalancerHandler` + its registered config) over N endpoints whose fake '
    + 'subchannels are READY, and its published READY picker is called in a loop timed with `process.hrtime.bigint()` after a '
    + 'warm-up; each result is stored, as grpc-js stores it. The main figure includes the `onCallStarted`/`onCallEnded` hooks a '
    + 'pick returns, called at once (grpc-js runs them once per started call; `round_robin` returns none): that is what a call '
    + 'pays the policy. Each policy is measured in a Node process of its own, alternating with `round_robin` (its ratio is to that '
    + 'process\'s `round_robin`), so that no policy runs with code paths another policy has made polymorphic or a heap '
    + 'another has filled: in one shared process the last-measured policy paid up to twice its own cost. Figures are medians '
    + 'over rounds. The bench runs the TypeScript sources '
    + 'through tsx (esbuild), whose CommonJS output reads every imported binding through a getter; grpc-js is plain compiled '
    + 'JavaScript, and so is our `dist/` build, which may therefore pick a little faster than measured here.',

  steps(context) {
    return context.policies.length;
  },

  async run(context: ScenarioContext): Promise<PickMetrics> {
    const rounds = context.quick ? 3 : 7;
    const targetMs = context.quick ? 15 : 60;
    const rows: PickRow[] = [];
    const iterations: string[] = [];
    for (const policy of context.policies) {
      context.progress.step(policy);
      const child = await measureInChild({ policies: [ROUND_ROBIN, policy], sizes: context.pickSizes, rounds, targetMs });
      // round_robin's rows from the first child; each policy's ratios are to the round_robin of its own process.
      const first = rows.length === 0;
      rows.push(...child.rows.filter(r => first || r.policy !== ROUND_ROBIN));
      iterations.push(`${policy}: ${child.iterations.join(', ')}`);
    }
    rows.sort((a, b) => a.endpoints - b.endpoints);
    return { rounds, iterationsPerMeasurement: iterations.join('; '), rows, referenceNs: referenceCosts(targetMs) };
  },

  tables(m) {
    const sizes = [...new Set(m.rows.map(r => r.endpoints))];
    const policies = [...new Set(m.rows.map(r => r.policy))];
    const cell = (policy: string, size: number, pick: (row: PickRow) => string): string => {
      const row = m.rows.find(r => r.policy === policy && r.endpoints === size);
      return row ? pick(row) : 'n/a';
    };
    const tables: Table[] = [{
      title: 'ns per pick, including the call hooks it returns (what each call pays), and ratio to grpc-js round_robin at the same size',
      columns: ['policy', ...sizes.map(s => `${s.toLocaleString('en-US')} endpoints`)],
      rows: policies.map(p => [p, ...sizes.map(s => cell(p, s, r => `${ns(r.nsPerPickWithHooks)} (${ratio(r.ratioWithHooks)})`))]),
      note: `median of ${m.rounds} rounds; round_robin returns no hooks.`,
    }, {
      title: 'ns per pick, pick() alone (ratio to round_robin)',
      columns: ['policy', ...sizes.map(s => `${s.toLocaleString('en-US')} endpoints`)],
      rows: policies.map(p => [p, ...sizes.map(s => cell(p, s, r => `${ns(r.nsPerPick)} (${ratio(r.ratio)})`))]),
      note: 'without the hooks a policy cannot recycle per-call state, so this can be slower than the figure above.',
    }, {
      title: 'setup: ms to take the endpoint list and publish the first picker',
      columns: ['policy', ...sizes.map(s => `${s.toLocaleString('en-US')} endpoints`)],
      rows: policies.map(p => [p, ...sizes.map(s => cell(p, s, r => `${r.setupMs.toFixed(1)} ms`))]),
    }, {
      title: 'reference: building blocks measured the same way',
      columns: ['operation', 'ns'],
      rows: Object.entries(m.referenceNs).map(([name, value]) => [name, ns(value)]),
    }];
    return tables;
  },

  plots(m) {
    return [lines({
      name: 'pick-cost',
      title: 'ns per pick (including the call hooks) by endpoint count',
      data: m.rows.map(r => ({ x: r.endpoints, series: r.policy, y: r.nsPerPickWithHooks })),
      xTitle: 'endpoints',
      yTitle: 'ns per pick (incl. call hooks)',
      seriesTitle: 'policy',
      logX: true,
      logY: true,
    })];
  },

  targets(m) {
    const checks: TargetCheck[] = [];
    for (const row of m.rows.filter(r => r.endpoints === TARGET_SIZE && r.policy !== ROUND_ROBIN)) {
      const base = m.rows.find(r => r.endpoints === TARGET_SIZE && r.policy === ROUND_ROBIN);
      checks.push({
        scenario: 'pick',
        what: `${row.policy}: ns per pick (incl. call hooks) at 1,000 endpoints vs round_robin`,
        target: `≤ ${TARGET_RATIO}×`,
        measured: `${ratio(row.ratioWithHooks)} (${ns(row.nsPerPickWithHooks)} vs ${ns(base?.nsPerPickWithHooks)}); pick() alone ${ratio(row.ratio)}`,
        met: row.ratioWithHooks <= TARGET_RATIO,
      });
    }
    const peakEwma = m.rows.find(r => r.endpoints === TARGET_SIZE && r.policy === 'etcd_peak_ewma');
    if (peakEwma !== undefined) {
      checks.push({
        scenario: 'pick',
        what: 'etcd_peak_ewma: ns per pick (incl. call hooks) at 1,000 endpoints (issue 24)',
        target: `≤ ${PEAK_EWMA_TARGET_NS} ns`,
        measured: ns(peakEwma.nsPerPickWithHooks),
        met: peakEwma.nsPerPickWithHooks <= PEAK_EWMA_TARGET_NS,
      });
    }
    if (checks.length === 0) {
      checks.push({ scenario: 'pick', what: 'ns per pick (incl. call hooks) at 1,000 endpoints vs round_robin', target: `≤ ${TARGET_RATIO}×`, measured: 'n/a', met: undefined, note: 'not measured at 1,000 endpoints (--pick-sizes)' });
    }
    return checks;
  },
};
