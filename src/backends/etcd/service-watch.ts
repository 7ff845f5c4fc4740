/**
 * One service on one etcd connection: list at one revision, watch from the next, and on
 * any watch trouble list again. Not etcd3's own resume: it restarts from the last
 * response's header revision, which can be ahead of its events, so events get skipped.
 */
import { type Etcd3, type IWatchResponse, type Watcher } from 'etcd3';
import { decodeEndpoint, servicePrefix } from './endpoint-codec';
import { clockTime, describeEtcdFailure, type EtcdFailure } from './etcd-error';
import { DiscoveryWatch, plural } from '../../discovery/discovery-watch';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { abandonWatcher } from './watch-resync';
import { listPrefix, type Pager } from './list-prefix';

/** etcd's list + watch, plugged into the discovery core; shared by channels. */
export class ServiceWatch extends DiscoveryWatch {
  private readonly prefix: string;
  private readonly pager: Pager;
  /** Bumped whenever the current list/watch is abandoned; stale callbacks compare it. */
  private generation = 0;
  private watcher: Watcher | undefined;
  /** When the current run of failed lists began; undefined after a good list. */
  private failingSinceMs: number | undefined;
  /** The last failure that said something (etcd3's "circuit breaker is open" does not). */
  private lastFailure: EtcdFailure | undefined;
  private lists = 0;

  /** `label` names the connection in messages; `warn` gets bad-value warnings (rate-limit it there). */
  constructor(
    service: string,
    private readonly client: Etcd3,
    label: string,
    options: ResolvedResolverOptions,
    warn: (text: string) => void,
  ) {
    super(service, label, options, warn, decodeEndpoint, 'etcd_resolver');
    this.prefix = servicePrefix(service);
    this.pager = { pageSize: options.pageSize };
  }

  /** Starts listing. Subscribers are only ever called from timers and I/O callbacks, never synchronously. */
  start(): void {
    this.trace('start');
    this.listThenWatch(this.generation);
  }

  protected stop(): void {
    this.generation++;
    this.dropWatcher();
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
        if (changed || !this.hasList) this.markChanged(0);
        this.startWatch(generation, listing.revision + 1);
      },
      (err: unknown) => {
        if (generation !== this.generation) return;
        const message = (err as Error)?.message ?? String(err);
        this.metrics?.failed('list');
        const nowMs = Date.now();
        this.failingSinceMs ??= nowMs;
        this.lastFailure = describeEtcdFailure(err) ?? this.lastFailure;
        this.failedBeforeFirstList(this.noListDetails(nowMs));
        this.scheduleResync(`list failed: ${message}`);
      },
    );
  }

  /** Why calls fail before any list, in user terms, never etcd3's internal texts. */
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
      this.resetBackoff();
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
    const generation = this.generation;
    this.retryLater(reason, () => {
      if (generation === this.generation) this.listThenWatch(generation);
    });
  }

  private dropWatcher(): void {
    abandonWatcher(this.watcher);
    this.watcher = undefined;
  }
}
