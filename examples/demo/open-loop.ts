/**
 * The demo's client load: unary calls at a fixed rate whatever their latency (open loop,
 * like real traffic), each recorded in `LoadStats`; shared by every registry's script.
 */
import * as grpc from '@grpc/grpc-js';
import { type EchoClient, type EchoReply } from '../../test/support/echo-proto';
import { type LoadStats } from './load-stats';

/** Each call's deadline. */
export const CALL_DEADLINE_MS = 3000;
/** Calls in flight beyond this are counted as failed, not sent (a client that cannot keep up). */
const MAX_IN_FLIGHT = 1000;
const TICK_MS = 10;

export class OpenLoopLoad {
  private inFlight = 0;
  private owed = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly client: EchoClient, private readonly ratePerS: number, private readonly stats: LoadStats) {}

  start(): void {
    this.timer = setInterval(() => {
      this.owed += (this.ratePerS * TICK_MS) / 1000;
      for (; this.owed >= 1; this.owed--) this.fire();
    }, TICK_MS);
  }

  /** Stops sending, then waits (bounded) for the calls in flight to finish. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    const quietBy = Date.now() + CALL_DEADLINE_MS + 1000;
    while (this.inFlight > 0 && Date.now() < quietBy) await new Promise(resolve => setTimeout(resolve, 20));
  }

  /** Stops sending at once (cleanup after an error). */
  halt(): void {
    clearInterval(this.timer);
  }

  private fire(): void {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.stats.failed('client over its in-flight cap');
      return;
    }
    this.inFlight++;
    const start = process.hrtime.bigint();
    this.client.unary({ message: 'demo' }, new grpc.Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (err, reply) => {
      this.inFlight--;
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (err) this.stats.failed(`${grpc.status[err.code]}: ${err.details}`);
      else this.stats.served((reply as EchoReply).server, ms);
    });
  }
}
