/**
 * A client under steady load, for fault-injection tests, the demo and the bench:
 * a closed loop of `concurrency` lanes, paced to at most `ratePerSecond` calls
 * started per second, each call with a deadline. It records every outcome: ok
 * per replica, each failure with its status and details, the phase it happened
 * in (tests name phases: 'etcd down', 'etcd back', …), the slowest call and the
 * longest time without a successful reply. `stop()` waits for the calls in
 * flight and returns the totals.
 */
import * as grpc from '@grpc/grpc-js';
import { type EchoClient, type EchoReply } from './echo-proto';

export interface SteadyLoadOptions {
  /** Lanes, each with at most one call in flight (closed loop). Defaults to 8. */
  concurrency?: number;
  /** Upper bound on calls started per second over all lanes; 0 = as fast as the lanes go. Defaults to 400. */
  ratePerSecond?: number;
  /** Deadline of each call. Defaults to 5,000 ms. */
  deadlineMs?: number;
  /** Name of the first phase. Defaults to 'start'. */
  phase?: string;
  /** Failures kept with their details (all are counted). Defaults to 100. */
  maxFailuresKept?: number;
}

export const DEFAULT_STEADY_LOAD_OPTIONS = Object.freeze({
  concurrency: 8,
  ratePerSecond: 400,
  deadlineMs: 5_000,
  phase: 'start',
  maxFailuresKept: 100,
});

/** One failed call. */
export interface LoadFailure {
  /** Milliseconds since the load started, at the failure. */
  readonly atMs: number;
  readonly phase: string;
  readonly code: grpc.status;
  /** `CODE: details`. */
  readonly reason: string;
  /** Response headers had arrived: the call was committed to its replica (a retry interceptor no longer retries it). */
  readonly afterHeaders: boolean;
}

export interface PhaseTotals {
  ok: number;
  failed: number;
  maxLatencyMs: number;
}

export interface LoadTotals {
  readonly ok: number;
  readonly failed: number;
  /** The first `maxFailuresKept` failures. */
  readonly failures: readonly LoadFailure[];
  /** Failures counted by `CODE: details` (details cut at 120 characters). */
  readonly reasons: Readonly<Record<string, number>>;
  /** Successful replies by replica name (the reply's `server`). */
  readonly byReplica: Readonly<Record<string, number>>;
  readonly byPhase: Readonly<Record<string, PhaseTotals>>;
  readonly maxLatencyMs: number;
  /** Longest time without a successful reply while the load ran (a stall, whatever its cause). */
  readonly longestGapMs: number;
  readonly durationMs: number;
}

export interface SteadyLoad {
  readonly ok: number;
  readonly failed: number;
  /** Successful replies by replica name so far. */
  readonly byReplica: ReadonlyMap<string, number>;
  /** Outcomes of calls that end from now on are recorded under `name`. */
  phase(name: string): void;
  /** Totals so far (calls in flight not included). */
  totals(): LoadTotals;
  /** Stops starting calls, waits for those in flight, returns the totals. Idempotent. */
  stop(): Promise<LoadTotals>;
}

/** Starts the load on `client` (give it its interceptors, e.g. the retry interceptor, at construction). */
export function startSteadyLoad(client: EchoClient, options: SteadyLoadOptions = {}): SteadyLoad {
  const concurrency = options.concurrency ?? DEFAULT_STEADY_LOAD_OPTIONS.concurrency;
  const ratePerSecond = options.ratePerSecond ?? DEFAULT_STEADY_LOAD_OPTIONS.ratePerSecond;
  const deadlineMs = options.deadlineMs ?? DEFAULT_STEADY_LOAD_OPTIONS.deadlineMs;
  const maxFailuresKept = options.maxFailuresKept ?? DEFAULT_STEADY_LOAD_OPTIONS.maxFailuresKept;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`steady load: concurrency must be an integer ≥ 1, got ${concurrency}`);
  if (!(ratePerSecond >= 0)) throw new TypeError(`steady load: ratePerSecond must be ≥ 0, got ${ratePerSecond}`);
  const intervalMs = ratePerSecond > 0 ? 1000 / ratePerSecond : 0;

  const startedAt = Date.now();
  let running = true;
  let phase = options.phase ?? DEFAULT_STEADY_LOAD_OPTIONS.phase;
  let nextSlotMs = startedAt;
  let ok = 0;
  let failed = 0;
  let maxLatencyMs = 0;
  let lastOkAt = startedAt;
  let longestGapMs = 0;
  const failures: LoadFailure[] = [];
  const reasons = new Map<string, number>();
  const byReplica = new Map<string, number>();
  const byPhase = new Map<string, PhaseTotals>();
  const phaseTotals = (name: string): PhaseTotals => {
    let t = byPhase.get(name);
    if (!t) byPhase.set(name, (t = { ok: 0, failed: 0, maxLatencyMs: 0 }));
    return t;
  };
  phaseTotals(phase);

  const record = (err: grpc.ServiceError | null, reply: EchoReply | undefined, latencyMs: number, afterHeaders: boolean): void => {
    const now = Date.now();
    const t = phaseTotals(phase);
    t.maxLatencyMs = Math.max(t.maxLatencyMs, latencyMs);
    maxLatencyMs = Math.max(maxLatencyMs, latencyMs);
    if (!err) {
      ok++;
      t.ok++;
      longestGapMs = Math.max(longestGapMs, now - lastOkAt);
      lastOkAt = now;
      const server = reply?.server ?? '?';
      byReplica.set(server, (byReplica.get(server) ?? 0) + 1);
      return;
    }
    failed++;
    t.failed++;
    const reason = `${grpc.status[err.code] ?? err.code}: ${String(err.details).slice(0, 120)}`;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    if (failures.length < maxFailuresKept) failures.push({ atMs: now - startedAt, phase, code: err.code, reason, afterHeaders });
  };

  const oneCall = (): Promise<void> => new Promise(resolve => {
    const t0 = Date.now();
    let afterHeaders = false;
    const call = client.unary({ message: 'steady' }, new grpc.Metadata(), { deadline: t0 + deadlineMs }, (err, reply) => {
      record(err, reply, Date.now() - t0, afterHeaders);
      resolve();
    });
    call.once('metadata', () => { afterHeaders = true; });
  });

  const lane = async (): Promise<void> => {
    while (running) {
      if (intervalMs > 0) {
        const now = Date.now();
        const slot = Math.max(nextSlotMs, now);
        nextSlotMs = slot + intervalMs;
        if (slot > now) await new Promise(resolve => setTimeout(resolve, slot - now));
        if (!running) break;
      }
      await oneCall();
    }
  };
  const lanes = Array.from({ length: concurrency }, () => lane());

  const totals = (): LoadTotals => ({
    ok,
    failed,
    failures: failures.slice(),
    reasons: Object.fromEntries(reasons),
    byReplica: Object.fromEntries(byReplica),
    byPhase: Object.fromEntries([...byPhase].map(([k, v]) => [k, { ...v }])),
    maxLatencyMs,
    longestGapMs: Math.max(longestGapMs, running ? Date.now() - lastOkAt : 0),
    durationMs: Date.now() - startedAt,
  });
  let stopped: Promise<LoadTotals> | undefined;

  return {
    get ok() { return ok; },
    get failed() { return failed; },
    byReplica,
    phase(name) {
      phase = name;
      phaseTotals(name);
    },
    totals,
    stop() {
      stopped ??= (async () => {
        running = false;
        await Promise.all(lanes);
        return totals();
      })();
      return stopped;
    },
  };
}

/** One line for a test log: calls, failures by reason, per-replica counts, worst latency and gap. */
export function describeLoad(t: LoadTotals): string {
  const reasons = Object.entries(t.reasons).map(([r, n]) => `${n}× ${r}`).join('; ');
  return `${t.ok + t.failed} calls in ${(t.durationMs / 1000).toFixed(1)} s, ${t.failed} failed${reasons ? ` (${reasons})` : ''}; `
    + `per replica ${JSON.stringify(t.byReplica)}; max latency ${t.maxLatencyMs} ms `
    + `(by phase ${JSON.stringify(Object.fromEntries(Object.entries(t.byPhase).map(([phase, p]) => [phase, p.maxLatencyMs])))}); `
    + `longest gap without a reply ${t.longestGapMs} ms`;
}
