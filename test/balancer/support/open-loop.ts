/**
 * An open loop for balancer integration tests: `ratePerSec` unary calls per
 * second whatever the replies do (a closed loop would slow down with the
 * servers and hide the tail), each reply kept with its server and latency.
 */
import * as grpc from '@grpc/grpc-js';
import { type EchoClient } from '../../support/echo-proto';

export interface Reply {
  atMs: number;
  server: string;
  latencyMs: number;
}

/**
 * Open loop: sends `ratePerSec` unary calls per second whatever the replies
 * do (a closed loop would slow down with the servers and hide the tail).
 */
export class OpenLoop {
  readonly replies: Reply[] = [];
  sent = 0;
  failed = 0;
  private inFlight = 0;
  private readonly startMs = performance.now();
  private readonly timer: NodeJS.Timeout;
  private drained: (() => void) | undefined;

  constructor(private readonly client: EchoClient, private readonly ratePerSec: number) {
    this.timer = setInterval(() => this.tick(), 2);
  }

  /** Replies received since `sinceMs` (performance.now clock). */
  since(sinceMs: number): Reply[] {
    return this.replies.filter(r => r.atMs >= sinceMs);
  }

  /** Stops sending; resolves once every call sent has ended. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.inFlight > 0) await new Promise<void>(resolve => { this.drained = resolve; });
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.startMs) * this.ratePerSec) / 1000);
    while (this.sent < due) this.send();
  }

  private send(): void {
    this.sent++;
    this.inFlight++;
    const startMs = performance.now();
    this.client.unary({ message: 'm' }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, reply) => {
      const atMs = performance.now();
      if (err) this.failed++;
      else this.replies.push({ atMs, server: reply!.server, latencyMs: atMs - startMs });
      if (--this.inFlight === 0) this.drained?.();
    });
  }
}

export function shareOf(replies: readonly Reply[], server: string): number {
  return replies.length === 0 ? 0 : replies.filter(r => r.server === server).length / replies.length;
}

export function percentileMs(replies: readonly Reply[], p: number): string {
  const sorted = replies.map(r => r.latencyMs).sort((a, b) => a - b);
  return sorted.length === 0 ? '-' : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(1);
}

