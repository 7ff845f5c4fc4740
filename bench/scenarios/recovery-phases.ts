/**
 * Two phases of `slow-replica` for `etcd_peak_ewma`, each in an open loop at
 * 30 % of capacity: how soon a replica that was slow and recovers gets a fair
 * share again, and what share of first attempts a replica failing fast still
 * gets (no retries: every call is one first attempt).
 */
import * as grpc from '@grpc/grpc-js';
import { type EchoClient } from '../../test/support/echo-proto';
import { type ReplicaProcess } from '../../test/support/replica-process';
import { type BenchEnvironment } from '../environment';
import { openLoop, type CallRecord } from '../load';

/** Within 20 % of a fair share of 1/5. */
export const RECOVERED_SHARE = 0.8 / 5;
/** The share is judged over sliding windows of this length. */
export const RECOVERY_WINDOW_MS = 500;
const SLOW_BEFORE_MS = 1_500;
const WATCH_AFTER_MS = 4_000;

export interface RecoveryPhase {
  /** ms from the recovery until a window of `RECOVERY_WINDOW_MS` ending then gave the replica ≥ `RECOVERED_SHARE`; null if never within `WATCH_AFTER_MS`. */
  readonly recoveredAfterMs: number | null;
  /** Its share in the last window watched. */
  readonly finalShare: number;
}

export interface FailingFastPhase {
  /** Share of first attempts that went to the failing replica (its UNAVAILABLE answers / all calls). */
  readonly firstAttemptShare: number;
  readonly calls: number;
}

/** `slow` is slow for 1.5 s under load, then recovers; watches its share for 4 s. */
export async function measureRecovery(client: EchoClient, env: BenchEnvironment, slow: ReplicaProcess, slowBehaviour: { latencyMs: number }, ratePerS: number): Promise<RecoveryPhase> {
  env.setBehaviour(slow, slowBehaviour);
  const records: CallRecord[] = [];
  let recoveredAtMs = Number.POSITIVE_INFINITY;
  const timer = setTimeout(() => {
    env.setBehaviour(slow, {});
    recoveredAtMs = performance.now();
  }, SLOW_BEFORE_MS);
  try {
    await openLoop(client, { ratePerS, durationMs: SLOW_BEFORE_MS + WATCH_AFTER_MS, onCall: r => { if (r.code === grpc.status.OK) records.push(r); } });
  } finally {
    clearTimeout(timer);
    env.setBehaviour(slow, {});
  }
  // Calls sent after the recovery, by when they were sent; a window's share is the slow replica's of its calls.
  const after = records.filter(r => r.startMs >= recoveredAtMs).sort((a, b) => a.startMs - b.startMs);
  let from = 0;
  let slowIn = 0;
  let recoveredAfterMs: number | null = null;
  let finalShare = 0;
  for (let to = 0; to < after.length; to++) {
    if (after[to].server === slow.name) slowIn++;
    while (after[to].startMs - after[from].startMs > RECOVERY_WINDOW_MS) {
      if (after[from].server === slow.name) slowIn--;
      from++;
    }
    const full = after[to].startMs - recoveredAtMs >= RECOVERY_WINDOW_MS;
    finalShare = slowIn / (to - from + 1);
    if (full && recoveredAfterMs === null && finalShare >= RECOVERED_SHARE) recoveredAfterMs = after[to].startMs - recoveredAtMs;
  }
  return { recoveredAfterMs, finalShare };
}

/** `failing` answers every call UNAVAILABLE at once for `durationMs` of load. */
export async function measureFailingFast(client: EchoClient, env: BenchEnvironment, failing: ReplicaProcess, ratePerS: number, durationMs: number): Promise<FailingFastPhase> {
  env.setBehaviour(failing, { failRate: 1 });
  try {
    const result = await openLoop(client, { ratePerS, durationMs, warmupMs: 500 });
    return { firstAttemptShare: result.calls === 0 ? 0 : (result.failedByCode.UNAVAILABLE ?? 0) / result.calls, calls: result.calls };
  } finally {
    env.setBehaviour(failing, {});
  }
}
