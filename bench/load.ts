/**
 * The bench's load generator: unary echo calls in a closed loop (N callers,
 * each sends its next call when the previous one ends: measures capacity) or
 * an open loop (calls due at a fixed rate whatever the latency: how real
 * traffic behaves; latency counts from when a call was *due*, so a stalled
 * client cannot hide its own queueing — no coordinated omission).
 *
 * Calls sent during the warm-up are not recorded. Latency percentiles are of
 * successful calls; failures are counted by status code. Times are
 * `performance.now()` milliseconds.
 */
import * as grpc from '@grpc/grpc-js';
import { type EchoClient, type EchoReply } from '../test/support/echo-proto';
import { LatencyRecorder, type LatencySummary } from './latency';

/** One finished call, as given to `onCall`. */
export interface CallRecord {
  /** When the call was sent (open loop: when it was due). */
  readonly startMs: number;
  readonly endMs: number;
  readonly code: grpc.status;
  /** Name of the replica that answered (successful calls). */
  readonly server: string | undefined;
  /** `host:port` of the call's last attempt as grpc-js reports it, when known. */
  readonly peer: string | undefined;
  /** Whether the call started inside the measurement window. */
  readonly recorded: boolean;
}

export interface LoadOptions {
  /** Length of the measurement window. */
  durationMs: number;
  /** Load sent before the window and not recorded. Defaults to 0. */
  warmupMs?: number;
  /** Deadline of each call. Defaults to 5,000. */
  deadlineMs?: number;
  /** Observes every finished call, warm-up included (event timing in scenarios). Defaults to none. */
  onCall?: (record: CallRecord) => void;
  /** Stops sending early (the window then ends there); resolves once the calls in flight end. Defaults to none. */
  signal?: AbortSignal;
}

export interface ClosedLoopOptions extends LoadOptions {
  /** Calls in flight at all times. */
  concurrency: number;
}

export interface OpenLoopOptions extends LoadOptions {
  /** Calls sent per second. */
  ratePerS: number;
  /** Calls due while this many are in flight are not sent and count as failed ("shed"). Defaults to 5,000. */
  maxInFlight?: number;
}

export interface LoadResult {
  /** Calls started in the window. */
  readonly calls: number;
  readonly ok: number;
  readonly failed: number;
  /** Failed calls by status name (`UNAVAILABLE`, …; `SHED` = not sent, client over its in-flight cap). */
  readonly failedByCode: Readonly<Record<string, number>>;
  readonly windowMs: number;
  /** Successful calls per second of window. */
  readonly callsPerS: number;
  /** Of successful calls. */
  readonly latencyMs: LatencySummary;
  /** Successful calls by replica name. */
  readonly byServer: Readonly<Record<string, number>>;
}

export const DEFAULT_DEADLINE_MS = 5_000;
const DEFAULT_MAX_IN_FLIGHT = 5_000;
const OPEN_LOOP_TICK_MS = 1;

/** Accumulates the calls of one run. */
class RunRecorder {
  private readonly latency = new LatencyRecorder();
  private calls = 0;
  private ok = 0;
  private readonly failedByCode: Record<string, number> = {};
  private readonly byServer: Record<string, number> = {};

  constructor(
    readonly windowStartMs: number,
    public windowEndMs: number,
    private readonly onCall: ((record: CallRecord) => void) | undefined,
    signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener('abort', () => {
      this.windowEndMs = Math.max(this.windowStartMs + 1, Math.min(this.windowEndMs, performance.now()));
    }, { once: true });
  }

  inWindow(startMs: number): boolean {
    return startMs >= this.windowStartMs && startMs < this.windowEndMs;
  }

  finish(startMs: number, endMs: number, code: grpc.status, server: string | undefined, peer: string | undefined): void {
    const recorded = this.inWindow(startMs);
    if (recorded) {
      this.calls++;
      if (code === grpc.status.OK) {
        this.ok++;
        this.latency.record(endMs - startMs);
        if (server !== undefined) this.byServer[server] = (this.byServer[server] ?? 0) + 1;
      } else {
        const name = grpc.status[code] ?? String(code);
        this.failedByCode[name] = (this.failedByCode[name] ?? 0) + 1;
      }
    }
    this.onCall?.({ startMs, endMs, code, server, peer, recorded });
  }

  shed(dueMs: number): void {
    if (!this.inWindow(dueMs)) return;
    this.calls++;
    this.failedByCode.SHED = (this.failedByCode.SHED ?? 0) + 1;
  }

  result(): LoadResult {
    const windowMs = this.windowEndMs - this.windowStartMs;
    return {
      calls: this.calls,
      ok: this.ok,
      failed: this.calls - this.ok,
      failedByCode: this.failedByCode,
      windowMs,
      callsPerS: Math.round((this.ok * 1000) / windowMs),
      latencyMs: this.latency.summary(),
      byServer: this.byServer,
    };
  }
}

function send(client: EchoClient, recorder: RunRecorder, startMs: number, deadlineMs: number, done: () => void): void {
  const call = client.unary({ message: 'bench' }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, reply) => {
    const endMs = performance.now();
    if (err) {
      const peer = call.getPeer();
      recorder.finish(startMs, endMs, err.code, undefined, peer && peer !== 'unknown' ? peer : undefined);
    } else {
      recorder.finish(startMs, endMs, grpc.status.OK, (reply as EchoReply).server, undefined);
    }
    done();
  });
}

/** `concurrency` callers, each sending its next call as soon as its previous one ends, for warm-up + duration. */
export async function closedLoop(client: EchoClient, options: ClosedLoopOptions): Promise<LoadResult> {
  if (!(options.concurrency >= 1)) throw new Error(`bench load: concurrency must be ≥ 1, got ${options.concurrency}`);
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const start = performance.now() + (options.warmupMs ?? 0);
  const recorder = new RunRecorder(start, start + options.durationMs, options.onCall, options.signal);
  const caller = async (): Promise<void> => {
    for (let now = performance.now(); now < recorder.windowEndMs && options.signal?.aborted !== true; now = performance.now()) {
      await new Promise<void>(resolve => send(client, recorder, now, deadlineMs, resolve));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, caller));
  return recorder.result();
}

/** Calls due every 1/rate seconds for warm-up + duration; resolves when the last one has ended. */
export function openLoop(client: EchoClient, options: OpenLoopOptions): Promise<LoadResult> {
  if (!(options.ratePerS > 0)) throw new Error(`bench load: ratePerS must be > 0, got ${options.ratePerS}`);
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const intervalMs = 1000 / options.ratePerS;
  const t0 = performance.now();
  const start = t0 + (options.warmupMs ?? 0);
  const recorder = new RunRecorder(start, start + options.durationMs, options.onCall, options.signal);
  let total = Math.ceil((recorder.windowEndMs - t0) / intervalMs);
  let sent = 0;
  let inFlight = 0;
  return new Promise(resolve => {
    const settle = (): void => {
      if (sent >= total && inFlight === 0) resolve(recorder.result());
    };
    const done = (): void => {
      inFlight--;
      settle();
    };
    const timer = setInterval(() => {
      if (options.signal?.aborted) total = sent;
      const now = performance.now();
      for (let due = t0 + sent * intervalMs; sent < total && due <= now; due = t0 + sent * intervalMs) {
        sent++;
        if (inFlight >= maxInFlight) {
          recorder.shed(due);
          continue;
        }
        inFlight++;
        send(client, recorder, due, deadlineMs, done);
      }
      if (sent >= total) {
        clearInterval(timer);
        settle();
      }
    }, OPEN_LOOP_TICK_MS);
  });
}
