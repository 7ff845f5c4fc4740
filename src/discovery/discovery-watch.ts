/**
 * The backend-independent half of following one service: table, subscribers,
 * coalescing, last good list, retry backoff. A backend adds its list + watch, feeds
 * the table, calls `markChanged`, and reports failures via `failedBeforeFirstList`.
 */
import { Backoff, proportionalJitter } from '../common/backoff';
import { tracer } from '../common/grpc-experimental';
import { currentMetrics } from '../metrics/metrics-binding';
import { type ServiceWatchMetrics } from '../metrics/resolver-metrics';
import { type EndpointDecoder } from './endpoint-record';
import { EndpointTable, type ResolvedEndpoints } from './endpoint-table';
import { type ResolvedResolverOptions } from './resolver-options';

/** What a service resolves to right now: endpoints, or why there are none yet. */
export type ResolutionState =
  | {
    readonly ok: true;
    readonly resolved: ResolvedEndpoints;
    /** The source's version of this list (etcd revision; ZooKeeper: the highest zxid seen). */
    readonly revision: number;
  }
  | { readonly ok: false; readonly details: string };

export type ResolutionSubscriber = (state: ResolutionState) => void;

/** Jitter taken off resync delays (up to 20 %), so clients do not retry in lockstep after a registry restart. */
const resyncJitter = proportionalJitter(0.2);

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The backoff of a resync (list again, re-watch), jittered. */
export function resyncBackoff(options: ResolvedResolverOptions, random?: () => number): Backoff {
  return new Backoff({ initialMs: options.initialBackoffMs, maxMs: options.maxBackoffMs, jitter: resyncJitter, random });
}

export abstract class DiscoveryWatch {
  protected readonly table: EndpointTable;
  protected readonly metrics: ServiceWatchMetrics | undefined;
  protected revision = 0;
  protected closed = false;
  private readonly subscribers = new Set<ResolutionSubscriber>();
  private readonly traceLine: (text: string) => void;
  private state: ResolutionState | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushDueAtMs = 0;
  private lastFlushMs = Number.NEGATIVE_INFINITY;
  private dirty = false;

  /** `label` names the connection in messages; `warn` gets bad-value warnings (rate-limit it there). */
  constructor(
    readonly service: string,
    protected readonly label: string,
    protected readonly options: ResolvedResolverOptions,
    warn: (text: string) => void,
    decode: EndpointDecoder,
    traceName: string,
  ) {
    this.backoff = resyncBackoff(options);
    this.metrics = currentMetrics()?.resolver.track(service);
    const metrics = this.metrics;
    this.table = new EndpointTable(service, warn, metrics && (() => metrics.skipped()), decode);
    const trace = tracer(traceName);
    this.traceLine = text => trace(`${this.service}@${this.label}: ${text}`);
  }

  /** Starts listing. Subscribers are only ever called from timers and I/O callbacks, never synchronously. */
  abstract start(): void;

  /** The backend's part of `close()`: stop its watches (the caller releases the connection). */
  protected abstract stop(): void;

  /** The latest state, or undefined before the first list finished or failed. */
  get current(): ResolutionState | undefined {
    return this.state;
  }

  /** True once a list was published (a later failure keeps serving it). */
  protected get hasList(): boolean {
    return this.state !== undefined && this.state.ok;
  }

  subscribe(subscriber: ResolutionSubscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Stops the watch and every timer. The caller releases the connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    clearTimeout(this.retryTimer);
    clearTimeout(this.flushTimer);
    this.subscribers.clear();
    this.metrics?.close();
    this.trace('closed');
  }

  /** Tells channels why there is no list, while none was ever obtained; afterwards the last good list serves. */
  protected failedBeforeFirstList(details: string): void {
    if (!this.hasList) this.publish({ ok: false, details });
  }

  /** Runs `retry` after the next backoff delay (replacing a pending one); `resetBackoff` after a success. */
  protected retryLater(reason: string, retry: () => void): void {
    clearTimeout(this.retryTimer);
    const delayMs = this.backoff.next();
    this.trace(`${reason}; listing again in ${delayMs} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) retry();
    }, delayMs);
    this.retryTimer.unref();
  }

  protected cancelRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  protected resetBackoff(): void {
    this.backoff.reset();
  }

  /** Publishes after `delayMs`, batching; the first change after a quiet period goes at once, so a lone join is not delayed. */
  protected markChanged(delayMs: number): void {
    this.dirty = true;
    const nowMs = Date.now();
    if (this.flushTimer === undefined && nowMs - this.lastFlushMs >= delayMs) delayMs = 0;
    const dueMs = nowMs + delayMs;
    if (this.flushTimer && this.flushDueAtMs <= dueMs) return;
    clearTimeout(this.flushTimer);
    this.flushDueAtMs = dueMs;
    this.flushTimer = setTimeout(() => this.flush(), delayMs);
    this.flushTimer.unref();
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (!this.dirty || this.closed) return;
    this.dirty = false;
    this.lastFlushMs = Date.now();
    const resolved = this.table.resolve();
    this.trace(`update: ${plural(resolved.endpoints.length, 'endpoint')} (${plural(this.table.keyCount, 'key')}) at revision ${this.revision}`);
    this.metrics?.published(resolved.endpoints.length);
    this.publish({ ok: true, resolved, revision: this.revision });
  }

  private publish(state: ResolutionState): void {
    const previous = this.state;
    if (!state.ok && previous && !previous.ok && previous.details === state.details) return;
    this.state = state;
    for (const subscriber of [...this.subscribers]) {
      try {
        subscriber(state);
      } catch (err) {
        this.trace(`subscriber threw: ${(err as Error)?.message}`);
      }
    }
  }

  protected trace(text: string): void {
    this.traceLine(text);
  }
}
