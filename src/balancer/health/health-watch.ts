/**
 * Client-side health checking (gRFC A17): one grpc.health.v1 `Watch` stream
 * per (subchannel, service name), shared by every wrapper of that subchannel
 * (grpc-js's subchannel pool lets several channels share one connection). It
 * is a grpc-js data producer, the mechanism ORCA's out-of-band reports use:
 * it lives on the real subchannel and goes when its last watcher does.
 *
 * - The stream runs only while the subchannel is READY and someone watches;
 *   it is opened on the subchannel itself (`getChannel()`), never through the
 *   channel's picker, so it reaches that exact server.
 * - SERVING = healthy; NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN = unhealthy.
 * - UNIMPLEMENTED: the server has no health service, so it is healthy (for
 *   this connection), with one warning per address and service per process.
 * - Any other end of the stream while READY: unhealthy, and the stream is
 *   re-opened after an exponential backoff, or on the next turn of the event
 *   loop when the stream had delivered an answer (as grpc-go does): a healthy
 *   server that recycles streams is not penalised, a broken one is not hammered.
 * - Leaving READY cancels the stream and any pending re-open, and the status
 *   goes back to pending: a new connection is not pickable before its first answer.
 */
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { log, logVerbosity, tracer, type ConnectivityStateListener, type DataWatcher, type RealSubchannel } from '../../common/grpc-experimental';
import { WarnOnce } from '../../common/warn-once';

const trace = tracer('etcd_health');

export type HealthVerdict = 'pending' | 'healthy' | 'unhealthy';

/** What the last health answer (or its absence) means for picking. */
export interface HealthStatus {
  readonly verdict: HealthVerdict;
  /** What the verdict rests on: `SERVING`, `NOT_SERVING`, `SERVICE_UNKNOWN`, `health service unimplemented`, `Watch ended: …`, … */
  readonly detail: string;
}

/** A data watcher that also hears the producer's health status. */
export interface HealthStatusWatcher extends DataWatcher {
  /** Called on each change while the subchannel is READY, and with `pending` when it becomes READY. Must not throw. */
  onHealthStatus(status: HealthStatus): void;
}

/** Backoff of re-opening a failed `Watch` stream (gRPC's connection backoff, with a lower cap). */
export const DEFAULT_HEALTH_WATCH_OPTIONS = Object.freeze({
  initialBackoffMs: 1_000,
  maxBackoffMs: 30_000,
});

const NOT_CONNECTED: HealthStatus = Object.freeze({ verdict: 'pending', detail: 'not connected' });
const WAITING: HealthStatus = Object.freeze({ verdict: 'pending', detail: 'waiting for the first answer' });
const UNIMPLEMENTED: HealthStatus = Object.freeze({ verdict: 'healthy', detail: 'health service unimplemented' });

const WATCH = healthService.Watch;
const PRODUCER_KEY_PREFIX = 'grpc-etcd-lb.health:';
/** Replicas without a health service, each reported once per process. */
const missingHealthService = new WarnOnce();

interface WatchResponse {
  status?: string | number;
}

/** The data producer key of the watch for `serviceName`. */
export function healthWatchKey(serviceName: string): string {
  return PRODUCER_KEY_PREFIX + serviceName;
}

function describe(serviceName: string): string {
  return serviceName === '' ? "'' (whole server)" : `'${serviceName}'`;
}

export class HealthWatch {
  private readonly watchers = new Set<HealthStatusWatcher>();
  private readonly client: grpc.Client;
  private readonly name: string;
  private call: grpc.ClientReadableStream<WatchResponse> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffCeilingMs: number = DEFAULT_HEALTH_WATCH_OPTIONS.initialBackoffMs;
  /** UNIMPLEMENTED seen on this connection: no more streams until the next one. */
  private unimplemented = false;
  private current: HealthStatus = NOT_CONNECTED;
  private closed = false;
  private readonly onConnectivity: ConnectivityStateListener = (_subchannel, _previous, next) => this.connectivityChanged(next);

  constructor(private readonly subchannel: RealSubchannel, private readonly serviceName: string) {
    this.name = `${subchannel.getAddress()} ${describe(serviceName)}`;
    // The subchannel's own channel: calls on it go to this connection only. grpc-js registers it in its
    // process-wide channelz registry, which keeps it (and the subchannel) until `close()`: closed when the
    // watch ends, as grpc-js's ORCA producer does with the same cached channel.
    this.client = new grpc.Client('unused', grpc.credentials.createInsecure(), { channelOverride: subchannel.getChannel() });
    subchannel.addConnectivityStateListener(this.onConnectivity);
  }

  /** The current status; `pending` while not connected or before the first answer. */
  get status(): HealthStatus {
    return this.current;
  }

  addDataWatcher(watcher: HealthStatusWatcher): void {
    if (this.closed) return;
    this.watchers.add(watcher);
    // Silent: this runs inside the creation of a subchannel (inside a pick-first update). Only a new
    // producer starts a stream here, and its one watcher reads `status` itself.
    this.maybeStart(false);
  }

  removeDataWatcher(watcher: HealthStatusWatcher): void {
    this.watchers.delete(watcher);
    if (this.watchers.size > 0 || this.closed) return;
    this.closed = true;
    this.subchannel.removeDataProducer(healthWatchKey(this.serviceName));
    this.subchannel.removeConnectivityStateListener(this.onConnectivity);
    this.stop('no watcher left');
    this.client.close();
    this.current = NOT_CONNECTED;
  }

  private connectivityChanged(next: grpc.connectivityState): void {
    if (this.closed) return;
    if (next === grpc.connectivityState.READY) {
      this.unimplemented = false;
      this.backoffCeilingMs = DEFAULT_HEALTH_WATCH_OPTIONS.initialBackoffMs;
      this.maybeStart(true);
      return;
    }
    // Not announced: whoever picks hears the connection go from the subchannel itself, and reads
    // `status` (pending) from here when it comes back.
    if (this.call !== undefined || this.retryTimer !== undefined) this.stop(`subchannel ${grpc.connectivityState[next]}`);
    this.current = NOT_CONNECTED;
  }

  /** Opens the stream if it should run and does not; `announce`: tell the watchers it is pending. */
  private maybeStart(announce: boolean): void {
    if (this.closed || this.call !== undefined || this.retryTimer !== undefined || this.unimplemented || this.watchers.size === 0) return;
    if (this.subchannel.getConnectivityState() !== grpc.connectivityState.READY) return;
    this.set(WAITING, announce ? 'always' : 'never');
    trace(`${this.name}: Watch opened`);
    const call = this.client.makeServerStreamRequest<{ service: string }, WatchResponse>(
      WATCH.path, WATCH.requestSerialize, WATCH.responseDeserialize as (bytes: Buffer) => WatchResponse, { service: this.serviceName },
    );
    this.call = call;
    let answered = false;
    call.on('data', (response: WatchResponse) => {
      if (this.call !== call) return;
      answered = true;
      this.backoffCeilingMs = DEFAULT_HEALTH_WATCH_OPTIONS.initialBackoffMs;
      const status = String(response.status ?? 'UNKNOWN');
      this.set(status === 'SERVING' ? { verdict: 'healthy', detail: status } : { verdict: 'unhealthy', detail: status }, 'changed');
    });
    // Every end is handled on 'status'; without an 'error' listener the stream would throw.
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => {
      if (this.call !== call) return;
      this.call = undefined;
      this.ended(status, answered);
    });
  }

  private ended(status: grpc.StatusObject, answered: boolean): void {
    const what = `${grpc.status[status.code] ?? status.code}${status.details ? `: ${status.details}` : ''}`;
    trace(`${this.name}: Watch ended with ${what}`);
    if (status.code === grpc.status.UNIMPLEMENTED) {
      this.unimplemented = true;
      this.warnOnce(`grpc-etcd-lb health check: ${this.name}: the server has no grpc.health.v1 service (UNIMPLEMENTED); treating it as healthy`);
      this.set(UNIMPLEMENTED, 'changed');
      return;
    }
    this.set({ verdict: 'unhealthy', detail: `Watch ended: ${what}` }, 'changed');
    let delayMs = 0;
    if (!answered) {
      const ceiling = this.backoffCeilingMs;
      this.backoffCeilingMs = Math.min(ceiling * 2, DEFAULT_HEALTH_WATCH_OPTIONS.maxBackoffMs);
      delayMs = ceiling / 2 + Math.random() * (ceiling / 2);
    }
    // Never re-opened synchronously: a stream ending with its connection must let the subchannel
    // leave READY first, or the new call would start on a closing session.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.maybeStart(true);
    }, delayMs);
    this.retryTimer.unref();
  }

  private stop(why: string): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const call = this.call;
    this.call = undefined;
    if (call !== undefined) {
      trace(`${this.name}: Watch cancelled (${why})`);
      call.cancel();
    }
  }

  /** Records `status` and tells the watchers: never, when it changed, or always. */
  private set(status: HealthStatus, tell: 'never' | 'changed' | 'always'): void {
    const changed = status.verdict !== this.current.verdict || status.detail !== this.current.detail;
    this.current = status;
    if (changed) trace(`${this.name}: ${status.verdict} (${status.detail})`);
    if (tell === 'never' || (tell === 'changed' && !changed)) return;
    for (const watcher of this.watchers) {
      try {
        watcher.onHealthStatus(status);
      } catch (err) {
        log(logVerbosity.ERROR, `grpc-etcd-lb health check: ${this.name}: a watcher threw: ${(err as Error)?.stack ?? String(err)}`);
      }
    }
  }

  private warnOnce(message: string): void {
    missingHealthService.warn(message, this.name);
  }
}
