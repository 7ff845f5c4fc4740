/**
 * `pick`: nanoseconds per pick of each policy's READY picker at 3 … 10,000
 * endpoints, against grpc-js `round_robin`'s picker over the same endpoints,
 * in-process (see fake-channel.ts). Each (policy, mode) gets its own compiled
 * loop so no policy pays for another's call-site feedback; rounds alternate the
 * policies and the median round counts. Every pick result is stored (as grpc-js
 * does), so no policy benefits from the result being optimised away. Time is the
 * process's CPU time (`process.cpuUsage`, user + system, GC threads included), so other
 * processes on a busy machine do not inflate it; on a quiet machine it equals wall time.
 */
import * as grpc from '@grpc/grpc-js';
import { steeringOf } from '../../src/balancer/call-steering';
import { type PickArgs, type Picker } from '../../src/common/grpc-experimental';
import { drivePolicy, type DrivenPolicy } from '../fake-channel';
import { median, ns, ratio, round } from '../format';
import { lines } from '../plots';
import { ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type Table, type TargetCheck } from '../scenario';

export const DEFAULT_PICK_SIZES: readonly number[] = Object.freeze([3, 100, 1_000, 10_000]);
/** The size the target is checked at. */
const TARGET_SIZE = 1_000;
const TARGET_RATIO = 1.5;
/** Issue 24: etcd_peak_ewma's pick (incl. call hooks) at `TARGET_SIZE` endpoints. */
const PEAK_EWMA_TARGET_NS = 500;

export interface PickRow {
  readonly policy: string;
  readonly endpoints: number;
  /** Median over rounds of the mean cost of `pick()` alone. */
  readonly nsPerPick: number;
  /** `pick()` plus the `onCallStarted`/`onCallEnded` hooks it returned (what each call pays the picker; the target's figure). */
  readonly nsPerPickWithHooks: number;
  /** `nsPerPick` / round_robin's at the same size. */
  readonly ratio: number;
  readonly ratioWithHooks: number;
  /** Time to take the endpoint list and publish the first picker. */
  readonly setupMs: number;
}

export interface PickMetrics {
  readonly rounds: number;
  readonly iterationsPerMeasurement: string;
  readonly rows: readonly PickRow[];
  /** Cost of building blocks a picker may use, measured the same way (for reading the figures). */
  readonly referenceNs: Readonly<Record<string, number>>;
}

type Loop = (subject: Picker, args: PickArgs, iterations: number, sink: unknown[]) => number;

/** A fresh function per (policy, mode): separate type feedback, as in an app that uses one policy. */
function compileLoop(withHooks: boolean): Loop {
  const hooks = withHooks
    ? 'if (result.onCallStarted !== null) result.onCallStarted(); if (result.onCallEnded !== null) result.onCallEnded(0, "", trailers);'
    : '';
  return new Function('subject', 'args', 'iterations', 'sink', `
    const trailers = args.metadata;
    const start = process.cpuUsage();
    for (let i = 0; i < iterations; i++) {
      const result = subject.pick(args);
      ${hooks}
      sink[i & 255] = result;
    }
    const used = process.cpuUsage(start);
    return (used.user + used.system) * 1000;
  `) as Loop;
}

interface Subject {
  readonly policy: string;
  readonly driven: DrivenPolicy;
  readonly plain: Loop;
  readonly hooked: Loop;
  iterations: number;
  readonly plainNs: number[];
  readonly hookedNs: number[];
}

function pickArgs(): PickArgs {
  return { metadata: new grpc.Metadata(), extraPickInfo: {} };
}

/** Mean ns per iteration of `loop`, after sizing `iterations` to about `targetMs`. */
function calibrate(subject: Subject, targetMs: number): void {
  const args = pickArgs();
  const sink: unknown[] = new Array(256);
  let iterations = 1_000;
  let elapsed = subject.plain(subject.driven.picker, args, iterations, sink);
  while (elapsed < 5e6 && iterations < 1e8) {
    iterations *= 4;
    elapsed = subject.plain(subject.driven.picker, args, iterations, sink);
  }
  subject.iterations = Math.max(1_000, Math.round((targetMs * 1e6 * iterations) / elapsed));
  subject.hooked(subject.driven.picker, args, subject.iterations, sink);
}

function measureRound(subject: Subject): void {
  const args = pickArgs();
  const sink: unknown[] = new Array(256);
  subject.plainNs.push(subject.plain(subject.driven.picker, args, subject.iterations, sink) / subject.iterations);
  subject.hookedNs.push(subject.hooked(subject.driven.picker, args, subject.iterations, sink) / subject.iterations);
}

/** Cost of building blocks, measured like picks: what a figure near them is made of. */
function referenceCosts(targetMs: number): Record<string, number> {
  const metadata = new grpc.Metadata();
  const blocks: Record<string, Picker> = {
    'performance.now()': { pick: () => performance.now() as never },
    'Date.now()': { pick: () => Date.now() as never },
    'steeringOf(metadata) (WeakMap miss)': { pick: () => steeringOf(metadata) as never },
    'Math.random()': { pick: () => Math.random() as never },
  };
  const result: Record<string, number> = {};
  for (const [name, picker] of Object.entries(blocks)) {
    const loop = compileLoop(false);
    const args = pickArgs();
    const sink: unknown[] = new Array(256);
    const iterations = Math.round(targetMs * 1e5);
    loop(picker, args, iterations, sink);
    result[name] = round(median([0, 1, 2].map(() => loop(picker, args, iterations, sink) / iterations)), 1);
  }
  return result;
}

export const pickScenario: Scenario<PickMetrics> = {
  name: 'pick',
  title: 'Pick cost',
  method: 'Each policy is created through grpc-js (`ChildLoadBalancerHandler` + its registered config) over N endpoints whose fake '
    + 'subchannels are READY, and its published READY picker is called in a loop timed with `process.hrtime.bigint()` after a '
    + 'warm-up; each result is stored, as grpc-js stores it. The main figure includes the `onCallStarted`/`onCallEnded` hooks a '
    + 'pick returns, called at once (grpc-js runs them once per started call; `round_robin` returns none): that is what a call '
    + 'pays the policy. Figures are medians over rounds that alternate the policies. The bench runs the TypeScript sources '
    + 'through tsx (esbuild), whose CommonJS output reads every imported binding through a getter; grpc-js is plain compiled '
    + 'JavaScript, and so is our `dist/` build, which may therefore pick a little faster than measured here.',

  steps(context) {
    return context.pickSizes.length;
  },

  async run(context: ScenarioContext): Promise<PickMetrics> {
    const policies = [ROUND_ROBIN, ...context.policies];
    const rounds = context.quick ? 3 : 7;
    const targetMs = context.quick ? 15 : 60;
    const rows: PickRow[] = [];
    const iterations: string[] = [];
    for (const size of context.pickSizes) {
      context.progress.step(`${size.toLocaleString('en-US')} endpoints`);
      const subjects: Subject[] = policies.map(policy => ({
        policy, driven: drivePolicy(policy, size), plain: compileLoop(false), hooked: compileLoop(true), iterations: 0, plainNs: [], hookedNs: [],
      }));
      try {
        for (const subject of subjects) calibrate(subject, targetMs);
        for (let r = 0; r < rounds; r++) {
          // Rotate the order so no policy always runs right after the same one.
          for (let k = 0; k < subjects.length; k++) measureRound(subjects[(k + r) % subjects.length]);
          await new Promise(resolve => setImmediate(resolve));
        }
      } finally {
        for (const subject of subjects) subject.driven.destroy();
      }
      const baseline = subjects[0];
      const basePlain = median(baseline.plainNs);
      const baseHooked = median(baseline.hookedNs);
      for (const subject of subjects) {
        const plain = median(subject.plainNs);
        const hooked = median(subject.hookedNs);
        rows.push({
          policy: subject.policy,
          endpoints: size,
          nsPerPick: round(plain, 1),
          nsPerPickWithHooks: round(hooked, 1),
          ratio: round(plain / basePlain, 2),
          ratioWithHooks: round(hooked / baseHooked, 2),
          setupMs: round(subject.driven.setupMs, 1),
        });
      }
      iterations.push(`${size}: ${subjects.map(s => s.iterations).join('/')}`);
    }
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
