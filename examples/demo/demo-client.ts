/** What every registry's demo shares: the client under load, the live table, the summary, the timing helpers. */
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src';
import { loadEcho, type EchoClient } from '../../test/support/echo-proto';
import { type LoadStats } from './load-stats';
import { OpenLoopLoad } from './open-loop';
import { type DemoOutput } from './table';

/** What the table shows of one replica besides its call counts. */
export interface ReplicaView {
  name: string;
  weight: number;
  state: string;
  inFlight: number;
}

/** A client of `target` with `policy` and the retry interceptor, under open-loop load of `rate` calls/s. */
export function startDemoClient(target: string, policy: string, rate: number, stats: LoadStats): { client: EchoClient; load: OpenLoopLoad } {
  const { Client } = loadEcho();
  const client = new Client(target, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ [policy]: {} }] }),
    // Echo is idempotent: a replica killed after sending headers may be retried too.
    interceptors: [createRetryInterceptor({ isIdempotent: () => true, onRetry: e => stats.retried(e.peer) })],
  });
  // Open-loop load: a fixed rate regardless of latency, like real traffic.
  const load = new OpenLoopLoad(client, rate, stats);
  load.start();
  return { client, load };
}

/** Draws the table once a second until the returned timer is cleared. */
export function drawEverySecond(out: DemoOutput, stats: LoadStats, elapsedS: () => number, durationS: number, replicas: () => ReplicaView[]): NodeJS.Timeout {
  return setInterval(() => {
    const snapshot = stats.window();
    out.frame({
      elapsedS: elapsedS(),
      durationS,
      callsPerS: snapshot.calls,
      calls: stats.totalCalls,
      failed: stats.totalFailed,
      rows: replicas().map(r => ({
        ...r,
        share: snapshot.calls > 0 ? (snapshot.byReplica.get(r.name)?.calls ?? 0) / snapshot.calls : 0,
        total: stats.replica(r.name).total,
        p99Ms: snapshot.byReplica.get(r.name)?.p99Ms,
        retried: stats.replica(r.name).retried,
      })),
    });
  }, 1000);
}

/** Prints the summary; the demo's exit code (0 when no call failed). */
export function printSummary(out: DemoOutput, stats: LoadStats, results: string[]): number {
  const all = stats.overall();
  out.line('');
  out.line('summary');
  for (const r of results) out.line(`  ${r}`);
  out.line(`  calls: ${stats.totalCalls}`);
  out.line(`  p50: ${all.p50Ms.toFixed(1)} ms, p99: ${all.p99Ms.toFixed(1)} ms`);
  for (const [reason, n] of stats.failureReasons()) out.line(`  failure: ${n} × ${reason}`);
  out.line(`failed calls: ${stats.totalFailed}`);
  return stats.totalFailed === 0 ? 0 : 1;
}

/** Polls `condition` every 5 ms; returns ms since `sinceMs` when it held (or when `timeoutMs` ran out). */
export async function msUntil(condition: () => boolean, sinceMs: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await delay(5);
  return Date.now() - sinceMs;
}

export function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

/** Resolves at `when` (ms epoch), at once if it has passed. */
export function waitUntil(when: number): Promise<void> {
  return delay(Math.max(0, when - Date.now()));
}
