/**
 * The measuring side of the `pick` scenario, run in a child process per policy
 * (`pick-child.ts`): the policy's code then carries no other policy's type feedback
 * or heap, as in an app that uses one policy.
 */
import * as grpc from '@grpc/grpc-js';
import { steeringOf } from '../../src/balancer/call-steering';
import { type PickArgs, type Picker } from '../../src/common/grpc-experimental';
import { drivePolicy, type DrivenPolicy } from '../fake-channel';
import { median, round } from '../format';

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

type Loop = (subject: Picker, args: PickArgs, iterations: number, sink: unknown[]) => number;

/** A fresh function per (policy, mode): separate type feedback, as in an app that uses one policy. */
function compileLoop(withHooks: boolean): Loop {
  const hooks = withHooks
    ? 'if (result.onCallStarted !== null) result.onCallStarted(); if (result.onCallEnded !== null) result.onCallEnded(0, "", trailers);'
    : '';
  return new Function('subject', 'args', 'iterations', 'sink', `
    const trailers = args.metadata;
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      const result = subject.pick(args);
      ${hooks}
      sink[i & 255] = result;
    }
    return Number(process.hrtime.bigint() - start);
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
export function referenceCosts(targetMs: number): Record<string, number> {
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

/** Measures `policies` (the first is the baseline of the ratios) at each size, rounds alternating them. */
export async function measurePolicies(policies: readonly string[], sizes: readonly number[], rounds: number, targetMs: number): Promise<{ rows: PickRow[]; iterations: string[] }> {
  const rows: PickRow[] = [];
  const iterations: string[] = [];
  for (const size of sizes) {
    const subjects: Subject[] = policies.map(policy => ({
      policy, driven: drivePolicy(policy, size), plain: compileLoop(false), hooked: compileLoop(true), iterations: 0, plainNs: [], hookedNs: [],
    }));
    try {
      for (const subject of subjects) calibrate(subject, targetMs);
      // Round 0 warms up (optimised code, timer pools filled) and is not counted.
      for (let r = 0; r <= rounds; r++) {
        // Rotate the order so no policy always runs right after the same one.
        for (let k = 0; k < subjects.length; k++) measureRound(subjects[(k + r) % subjects.length]);
        if (r === 0) for (const subject of subjects) subject.plainNs.length = subject.hookedNs.length = 0;
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
  return { rows, iterations };
}
