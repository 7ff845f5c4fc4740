/**
 * When the demo's events happen, scaled to the run's duration. Each phase (the time
 * from one event to the next) has a floor it needs to show its effect — a replica
 * process starting under load, a drain, etcd down and the client seeing a change
 * through etcd once it is back — and the time above the sum of the floors is shared
 * out in fixed proportions, so a short run tells the same story as a long one.
 */

/** How long etcd stays down (kill -9 to restart). */
export const ETCD_DOWN_MS = 3000;

interface Phase {
  /** What starts the phase. */
  readonly event: string;
  /** Shortest span that shows the event's effect on this machine class, in seconds. */
  readonly minS: number;
  /** Share of the time above the floors. */
  readonly share: number;
}

const PHASES: readonly Phase[] = [
  { event: 'start (balanced load)', minS: 2, share: 0.2 },
  { event: 'kill -9 of a replica', minS: 2, share: 0.18 },
  // Starting a replica process under load takes 1–2 s before it registers.
  { event: 'a replica joins', minS: 4, share: 0.17 },
  // 1 s deregister grace, then the drain.
  { event: 'a graceful shutdown', minS: 3, share: 0.15 },
  // Down ETCD_DOWN_MS, ~1.5 s to restart, then a change must reach the client and calls go on.
  { event: 'the etcd restart', minS: 9, share: 0.3 },
];

/** The shortest `--duration` the script fits in, in seconds. */
export const MIN_DURATION_S = PHASES.reduce((sum, p) => sum + p.minS, 0);

/** Seconds from the start of the load at which each event begins. */
export interface DemoScript {
  readonly killS: number;
  readonly joinS: number;
  readonly leaveS: number;
  readonly etcdKillS: number;
  readonly endS: number;
}

/** The script for a run of `durationS` seconds; throws below MIN_DURATION_S. */
export function planScript(durationS: number): DemoScript {
  if (!(durationS >= MIN_DURATION_S)) {
    throw new RangeError(`planScript: the script needs at least ${MIN_DURATION_S} s, got ${durationS}`);
  }
  const slackS = durationS - MIN_DURATION_S;
  const starts: number[] = [];
  let t = 0;
  for (const phase of PHASES) {
    starts.push(t);
    t += phase.minS + phase.share * slackS;
  }
  const round = (s: number): number => Math.round(s * 10) / 10;
  return { killS: round(starts[1]), joinS: round(starts[2]), leaveS: round(starts[3]), etcdKillS: round(starts[4]), endS: durationS };
}
