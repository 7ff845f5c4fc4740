/**
 * The echo server fixture shared by tests, the demo and the bench: a real grpc-js
 * server whose behaviour (latency, slow spikes or turns, failure rate and code, hang) can be changed at
 * any time, and that counts what it served.
 */
import * as grpc from '@grpc/grpc-js';
import { loadEcho, type EchoReply, type EchoRequest, type StreamRequest } from './echo-proto';
import { seededRandom } from './wait';

export interface EchoBehaviour {
  /** Added latency per call (and per streamed message). Defaults to 0. */
  latencyMs?: number;
  /** Fraction of calls, 0..1, that fail with `failCode`. Defaults to 0. */
  failRate?: number;
  /** Status returned by failing calls. Defaults to UNAVAILABLE. */
  failCode?: grpc.status;
  /** Sent as `grpc-retry-pushback-ms` trailer on failures when set. Defaults to none. */
  pushbackMs?: number;
  /** Calls never answer (until the server stops or the client cancels). Defaults to false. */
  hang?: boolean;
  /**
   * Independent slow calls: each call takes `extraMs` longer with probability `rate`, drawn
   * from a PRNG seeded with `seed` (restarted whenever the behaviour is set). Defaults to none.
   */
  spikes?: { rate: number; extraMs: number; seed: number };
  /**
   * Slow in turns: calls take `extraMs` longer while `floor(Date.now() / periodMs) % count === index`.
   * `count` servers with indexes 0..count-1 and one period take turns (the wall clock is shared
   * across processes, so replicas agree without talking). Defaults to none.
   */
  slowTurn?: { index: number; count: number; periodMs: number; extraMs: number };
  /**
   * Serves at most this many unary calls at a time; the others queue for a slot (each holds its
   * slot for its `latencyMs`). A replica that does one thing at a time. Defaults to unlimited.
   */
  maxConcurrent?: number;
  /**
   * GC-like stalls: the event loop is blocked for `forMs` at the start of every `everyMs` of the
   * wall clock (a busy loop: nothing is served, nothing is accepted meanwhile). Defaults to none.
   */
  stall?: { everyMs: number; forMs: number };
}

export interface EchoServerOptions extends EchoBehaviour {
  /** Options of the `grpc.Server` (e.g. `loadReportServerOptions()`). Defaults to none. */
  serverOptions?: grpc.ServerOptions;
  /** Listen address. Defaults to `127.0.0.1:0` (a free port). */
  address?: string;
  /** Name put in every reply's `server` field. Defaults to the bound address. */
  name?: string;
  /** Randomness for `failRate`. Defaults to Math.random. */
  random?: () => number;
  /** Called with each call's metadata (e.g. to assert what reaches a server). */
  onCall?: (method: string, metadata: grpc.Metadata) => void;
  /** Extra services to add before binding (e.g. grpc.health.v1). */
  configure?: (server: grpc.Server) => void;
}

/** Calls held in the handler by `EchoServer.holdNext`, until released. */
export interface EchoHold {
  /** Calls waiting in the handler now. */
  readonly held: number;
  /** Calls taken so far (at most the `count` asked for). */
  readonly taken: number;
  /** Lets every held call go on (latency, then its normal answer); later arrivals are no longer held. */
  release(): void;
}

export interface EchoServer {
  readonly server: grpc.Server;
  /** `127.0.0.1:<port>` as bound. */
  readonly address: string;
  readonly port: number;
  readonly name: string;
  /** Calls that reached the handler (including failed and hung ones). */
  calls: number;
  /** Calls answered with OK. */
  ok: number;
  /** Calls answered with an error by the fault profile. */
  failed: number;
  /** Calls currently in the handler. */
  inFlight: number;
  /** Fraction of the last second its `maxConcurrent` slots were busy (0 without `maxConcurrent`). */
  slotUtilization(): number;
  behaviour: EchoBehaviour;
  setBehaviour(b: EchoBehaviour): void;
  /**
   * Holds the next `count` calls to arrive in the handler (unary and streaming) until
   * `release()`: calls in flight by construction, e.g. across a shutdown. A held call
   * also goes on when it is cancelled or the server stops.
   */
  holdNext(count: number): EchoHold;
  /** Graceful: tryShutdown, then forceShutdown after `graceMs` (default 2000). */
  stop(graceMs?: number): Promise<void>;
  forceStop(): void;
}

const running = new Set<EchoServer>();

/** `maxConcurrent` slots: a FIFO queue of calls waiting for one, and the slots' busy time. */
class Slots {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];
  /** Busy slot-ms accumulated in the current and previous 1 s buckets. */
  private busyMs = 0;
  private previousBusyMs = 0;
  private bucketStartMs = performance.now();
  private changedAtMs = performance.now();

  /** Waits for a slot and holds it `holdMs`; a call cancelled while it queued gives its turn up at once. */
  async run(limit: number, holdMs: number, cancelled: () => boolean): Promise<void> {
    if (this.busy >= limit) await new Promise<void>(resolve => this.waiting.push(resolve));
    if (cancelled()) {
      this.waiting.shift()?.();
      return;
    }
    this.account();
    this.busy++;
    if (holdMs > 0) await new Promise(r => setTimeout(r, holdMs));
    this.account();
    this.busy--;
    this.waiting.shift()?.();
  }

  utilization(nowMs: number, limit: number | undefined): number {
    if (limit === undefined) return 0;
    this.account();
    const into = Math.min(1, (nowMs - this.bucketStartMs) / 1000);
    return Math.min(1, (this.busyMs + this.previousBusyMs * (1 - into)) / 1000 / limit);
  }

  private account(): void {
    const nowMs = performance.now();
    if (nowMs - this.bucketStartMs >= 1000) {
      this.busyMs += this.busy * (this.bucketStartMs + 1000 - this.changedAtMs);
      this.previousBusyMs = nowMs - this.bucketStartMs >= 2000 ? this.busy * 1000 : this.busyMs;
      this.busyMs = 0;
      this.changedAtMs = this.bucketStartMs = nowMs - ((nowMs - this.bucketStartMs) % 1000);
    }
    this.busyMs += this.busy * (nowMs - this.changedAtMs);
    this.changedAtMs = nowMs;
  }
}

type CancellableCall = { once(event: 'cancelled', listener: () => void): unknown };

export async function startEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  const { service } = loadEcho();
  const server = new grpc.Server(options.serverOptions);
  const random = options.random ?? Math.random;
  let spikeRandom = options.spikes ? seededRandom(options.spikes.seed) : undefined;
  const hung = new Set<() => void>();
  const slots = new Slots();
  const holds: Array<{ remaining: number; hold: (call: CancellableCall) => Promise<void> }> = [];
  let name = options.name ?? '';

  const state: EchoServer = {
    server,
    address: '',
    port: 0,
    get name() { return name; },
    calls: 0,
    ok: 0,
    failed: 0,
    inFlight: 0,
    behaviour: {
      latencyMs: options.latencyMs, failRate: options.failRate, failCode: options.failCode,
      pushbackMs: options.pushbackMs, hang: options.hang, spikes: options.spikes, slowTurn: options.slowTurn,
      maxConcurrent: options.maxConcurrent, stall: options.stall,
    },
    setBehaviour(b) {
      state.behaviour = { ...b };
      spikeRandom = b.spikes ? seededRandom(b.spikes.seed) : undefined;
      scheduleStall();
    },
    slotUtilization() {
      return slots.utilization(performance.now(), state.behaviour.maxConcurrent);
    },
    holdNext(count) {
      let released = false;
      let taken = 0;
      const waiting = new Set<() => void>();
      const entry = {
        remaining: count,
        hold: (call: CancellableCall): Promise<void> => new Promise<void>(resolve => {
          taken++;
          const go = (): void => {
            waiting.delete(go);
            hung.delete(go);
            resolve();
          };
          waiting.add(go);
          hung.add(go);
          call.once('cancelled', go);
        }),
      };
      holds.push(entry);
      return {
        get held() { return waiting.size; },
        get taken() { return taken; },
        release() {
          if (released) return;
          released = true;
          entry.remaining = 0;
          for (const go of [...waiting]) go();
        },
      };
    },
    async stop(graceMs = 2000) {
      running.delete(state);
      stopStalls();
      for (const release of hung) release();
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, graceMs);
        server.tryShutdown(() => { clearTimeout(timer); resolve(); });
      });
    },
    forceStop() {
      running.delete(state);
      stopStalls();
      for (const release of hung) release();
      server.forceShutdown();
    },
  };

  /** Applies the fault profile; resolves to an error status or undefined for success. */
  const fault = async (call: CancellableCall): Promise<Partial<grpc.StatusObject> | undefined> => {
    const holder = holds.find(h => h.remaining > 0);
    if (holder) {
      holder.remaining--;
      await holder.hold(call);
    }
    const b = state.behaviour;
    if (b.hang) {
      await new Promise<void>(resolve => {
        const release = (): void => { hung.delete(release); resolve(); };
        hung.add(release);
        call.once('cancelled', release);
      });
      return { code: grpc.status.UNAVAILABLE, details: 'hung call released' };
    }
    let delayMs = b.latencyMs ?? 0;
    if (b.spikes && spikeRandom && spikeRandom() < b.spikes.rate) delayMs += b.spikes.extraMs;
    const turn = b.slowTurn;
    if (turn && Math.floor(Date.now() / turn.periodMs) % turn.count === turn.index) delayMs += turn.extraMs;
    if (b.maxConcurrent !== undefined) await slots.run(b.maxConcurrent, delayMs, () => (call as { cancelled?: boolean }).cancelled === true);
    else if (delayMs > 0) await new Promise(r => setTimeout(r, delayMs));
    if (b.failRate && random() < b.failRate) {
      const metadata = new grpc.Metadata();
      if (b.pushbackMs !== undefined) metadata.set('grpc-retry-pushback-ms', String(b.pushbackMs));
      return { code: b.failCode ?? grpc.status.UNAVAILABLE, details: `injected failure from ${name}`, metadata };
    }
    return undefined;
  };

  server.addService(service, {
    Unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      state.calls++;
      state.inFlight++;
      options.onCall?.('Unary', call.metadata);
      void fault(call).then(err => {
        state.inFlight--;
        if (err) {
          state.failed++;
          callback(err);
        } else {
          state.ok++;
          callback(null, { message: call.request.message ?? '', server: name, index: 0 });
        }
      });
    },
    ServerStream: (call: grpc.ServerWritableStream<StreamRequest, EchoReply>) => {
      state.calls++;
      state.inFlight++;
      options.onCall?.('ServerStream', call.metadata);
      void serveStream(call);
    },
  });
  const serveStream = async (call: grpc.ServerWritableStream<StreamRequest, EchoReply>): Promise<void> => {
    const err = await fault(call);
    if (err) {
      state.inFlight--;
      state.failed++;
      call.emit('error', err);
      return;
    }
    const count = call.request.count ?? 1;
    for (let i = 0; i < count && !call.cancelled; i++) {
      if (i > 0 && state.behaviour.latencyMs) await new Promise(r => setTimeout(r, state.behaviour.latencyMs));
      call.write({ message: call.request.message ?? '', server: name, index: i });
    }
    state.inFlight--;
    state.ok++;
    call.end();
  };
  let stallTimer: NodeJS.Timeout | undefined;
  /** Arms the next stall (aligned on the wall clock) while the behaviour asks for stalls. */
  const scheduleStall = (): void => {
    if (stallTimer !== undefined) clearTimeout(stallTimer);
    stallTimer = undefined;
    const stall = state.behaviour.stall;
    if (stall === undefined || !running.has(state)) return;
    stallTimer = setTimeout(() => {
      const until = Date.now() + stall.forMs;
      // Deliberately blocking: a GC pause stops the whole process.
      while (Date.now() < until) { /* stalled */ }
      scheduleStall();
    }, stall.everyMs - (Date.now() % stall.everyMs));
    stallTimer.unref();
  };
  const stopStalls = (): void => {
    if (stallTimer !== undefined) clearTimeout(stallTimer);
    stallTimer = undefined;
  };
  options.configure?.(server);

  const bindAddress = options.address ?? '127.0.0.1:0';
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(bindAddress, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const host = bindAddress.slice(0, bindAddress.lastIndexOf(':'));
  const address = `${host}:${port}`;
  Object.assign(state, { address, port });
  if (!name) name = address;
  running.add(state);
  scheduleStall();
  return state;
}

/** Force-stops every echo server this process started and has not stopped. */
export async function stopAllEchoServers(): Promise<void> {
  for (const s of [...running]) s.forceStop();
}
