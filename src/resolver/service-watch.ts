/**
 * One service on one etcd connection, shared by every channel resolving it:
 * list the prefix at one revision, watch from `revision + 1`, and on any watch
 * trouble (cancel, compaction, lost stream, etcd restart) list and watch again.
 *
 * We re-list instead of letting etcd3 resume a lost watch by itself: etcd3
 * resumes from `header.revision + 1` of the last response, and a catch-up
 * response's header can be ahead of the events it carries, so a resumed watch
 * can skip events. A list is the state at one revision: no gap, no duplicate.
 */
import { type Etcd3, type IWatchResponse, type Watcher } from 'etcd3';
import { servicePrefix } from '../etcd/endpoint-codec';
import { clockTime, describeEtcdFailure, type EtcdFailure } from '../etcd/etcd-error';
import { abandonWatcher } from '../etcd/watch-resync';
import { tracer } from '../grpc-experimental';
import { currentMetrics } from '../metrics/metrics-binding';
import { type ServiceWatchMetrics } from '../metrics/resolver-metrics';
import { EndpointTable, type ResolvedEndpoints } from './endpoint-table';
import { type ResolvedEtcdResolverOptions } from './etcd-resolver-options';
import { listPrefix, type Pager } from './list-prefix';

const trace = tracer('etcd_resolver');

/** What a service resolves to right now: endpoints, or why there are none yet. */
export type ResolutionState =
  | { readonly ok: true; readonly resolved: ResolvedEndpoints; readonly revision: number }
  | { readonly ok: false; readonly details: string };

export type ResolutionSubscriber = (state: ResolutionState) => void;

/** Jitter taken off retry delays (up to 20 %), so clients do not retry in lockstep after an etcd restart. */
const BACKOFF_JITTER = 0.2;

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Exponential delay for retry `attempt` (0-based), never above the cap, with jitter. */
export function resyncDelayMs(attempt: number, options: ResolvedEtcdResolverOptions, random: () => number = Math.random): number {
  const base = Math.min(options.maxBackoffMs, options.initialBackoffMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (1 - BACKOFF_JITTER * random()));
}

export class ServiceWatch {
  private readonly prefix: string;
  private readonly table: EndpointTable;
  private readonly pager: Pager;
  private readonly subscribers = new Set<ResolutionSubscriber>();
  private state: ResolutionState | undefined;
  /** Bumped whenever the current list/watch is abandoned; stale callbacks compare it. */
  private generation = 0;
  private watcher: Watcher | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushDueAtMs = 0;
  /** When the table was last published (coalescing starts from there). */
  private lastFlushMs = Number.NEGATIVE_INFINITY;
  private attempt = 0;
  private dirty = false;
  private revision = 0;
  private closed = false;
  /** When the current run of failed lists began; undefined after a good list. */
  private failingSinceMs: number | undefined;
  /** The last failure that said something (etcd3's "circuit breaker is open" does not). */
  private lastFailure: EtcdFailure | undefined;
  /** Set when a MeterProvider was installed before this watch started. */
  private readonly metrics: ServiceWatchMetrics | undefined;
  private lists = 0;

  /**
   * @param label names the connection in traces and errors (e.g. its hosts).
   * @param warn receives bad-value warnings (rate-limit it there).
   */
  constructor(
    readonly service: string,
    private readonly client: Etcd3,
    private readonly label: string,
    private readonly options: ResolvedEtcdResolverOptions,
    warn: (text: string) => void,
  ) {
    this.prefix = servicePrefix(service);
    this.metrics = currentMetrics()?.resolver.track(service);
    const metrics = this.metrics;
    this.table = new EndpointTable(service, warn, metrics && (() => metrics.skipped()));
    this.pager = { pageSize: options.pageSize };
  }

  /** The latest state, or undefined before the first list finished or failed. */
  get current(): ResolutionState | undefined {
    return this.state;
  }

  /** Starts listing. Subscribers are only ever called from timers and I/O callbacks, never synchronously. */
  start(): void {
    this.trace('start');
    this.listThenWatch(this.generation);
  }

  /** Adds a subscriber; returns its disposer. */
  subscribe(subscriber: ResolutionSubscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Stops the watch and every timer. The caller releases the etcd client. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.dropWatcher();
    clearTimeout(this.retryTimer);
    clearTimeout(this.flushTimer);
    this.subscribers.clear();
    this.metrics?.close();
    this.trace('closed');
  }

  private listThenWatch(generation: number): void {
    const startedMs = Date.now();
    if (this.lists++ > 0) this.metrics?.relisted();
    listPrefix(this.client, this.prefix, this.pager, this.options.listTimeoutMs).then(
      listing => {
        if (generation !== this.generation) return;
        this.failingSinceMs = undefined;
        this.lastFailure = undefined;
        this.metrics?.listed();
        this.revision = listing.revision;
        const changed = this.table.replaceAll(listing.kvs);
        this.trace(`listed ${plural(listing.kvs.length, 'key')} at revision ${listing.revision} in ${Date.now() - startedMs} ms (pages of ${this.pager.pageSize})`);
        // The first list, and a re-list that found changes, are published at once (a list is already a batch).
        if (changed || this.state === undefined || !this.state.ok) this.markChanged(0);
        this.startWatch(generation, listing.revision + 1);
      },
      (err: unknown) => {
        if (generation !== this.generation) return;
        const message = (err as Error)?.message ?? String(err);
        this.metrics?.failed('list');
        const nowMs = Date.now();
        this.failingSinceMs ??= nowMs;
        this.lastFailure = describeEtcdFailure(err) ?? this.lastFailure;
        if (this.state === undefined || !this.state.ok) {
          // Only while no list was ever obtained: afterwards the last good list keeps serving.
          this.publish({ ok: false, details: this.noListDetails(nowMs) });
        }
        this.scheduleResync(`list failed: ${message}`);
      },
    );
  }

  /**
   * Why calls fail while no list was ever obtained, in user terms: how long etcd has been
   * failing and the cause, never etcd3's internal texts (see etcd-error.ts).
   */
  private noListDetails(nowMs: number): string {
    const sinceMs = this.failingSinceMs ?? nowMs;
    const failure = this.lastFailure;
    const what = failure === undefined || failure.unreachable ? 'unreachable' : 'refusing the list';
    const cause = failure === undefined ? '' : `; last error: ${failure.cause}`;
    return `etcd resolver: cannot list service '${this.service}' from etcd ${this.label}: ${what} since ` +
      `${clockTime(sinceMs)} UTC (${((nowMs - sinceMs) / 1000).toFixed(1)} s), retrying${cause}`;
  }

  private startWatch(generation: number, fromRevision: number): void {
    const watcher = this.client.watch().prefix(this.prefix).startRevision(String(fromRevision)).watcher();
    this.watcher = watcher;
    watcher.on('connected', () => {
      if (generation !== this.generation) return;
      this.attempt = 0;
      this.metrics?.watchConnected();
      this.trace(`watching from revision ${fromRevision}`);
    });
    watcher.on('data', (res: IWatchResponse) => {
      if (generation !== this.generation) return;
      this.applyEvents(res);
    });
    watcher.on('disconnected', (err: Error) => {
      if (generation !== this.generation) return;
      this.metrics?.failed('watch');
      this.scheduleResync(`watch disconnected: ${err?.message}`);
    });
    watcher.on('error', (err: Error) => {
      if (generation !== this.generation) return;
      this.metrics?.failed('watch');
      this.scheduleResync(`watch failed: ${err?.message}`);
    });
  }

  private applyEvents(res: IWatchResponse): void {
    let changed = false;
    for (const event of res.events) {
      const key = event.kv.key.toString('utf8');
      if (event.type === 'Delete') {
        changed = this.table.delete(key) || changed;
      } else {
        changed = this.table.put({ key, value: event.kv.value, modRevision: event.kv.mod_revision }) || changed;
      }
    }
    this.revision = Math.max(this.revision, Number(res.header.revision));
    if (changed) this.markChanged(this.options.coalesceWindowMs);
  }

  /** Abandons the current list/watch and lists again after a backoff delay. */
  private scheduleResync(reason: string): void {
    this.generation++;
    this.dropWatcher();
    this.metrics?.watchEnded();
    clearTimeout(this.retryTimer);
    const delayMs = resyncDelayMs(this.attempt++, this.options);
    this.trace(`${reason}; listing again in ${delayMs} ms`);
    const generation = this.generation;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (generation === this.generation) this.listThenWatch(generation);
    }, delayMs);
    this.retryTimer.unref();
  }

  private dropWatcher(): void {
    abandonWatcher(this.watcher);
    this.watcher = undefined;
  }

  /**
   * Publishes the table after `delayMs`, batching whatever else changes meanwhile; but
   * the first change after a quiet period (nothing published within `delayMs`) goes at
   * once: only changes that follow a publication closely wait, so a lone join or leave
   * is seen without delay and a burst still costs a handful of updates.
   */
  private markChanged(delayMs: number): void {
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

  private trace(text: string): void {
    trace(`${this.service}@${this.label}: ${text}`);
  }
}
