/**
 * The live clients of one service: list, then watch; on watch trouble list again (as
 * service-watch.ts). Kept sorted by id, so a join or leave never re-sorts.
 */
import { EtcdPermissionDeniedError, type Etcd3, type IWatchResponse, type Watcher } from 'etcd3';
import { tracer } from '../../common/grpc-experimental';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { sortedIndex } from '../../discovery/endpoint-table';
import { listPrefix, type Pager } from './list-prefix';
import { abandonWatcher, ResyncTimer } from './watch-resync';
import { type ClientRegistryView } from '../../discovery/client-registry-source';
import { decodeClientZone } from './client-registry-keys';

const trace = tracer('etcd_client_registry');

export interface ClientRegistryWatchOwner {
  /** The view changed (called from I/O callbacks, at most once per batch of events). */
  changed(view: ClientRegistryView): void;
  /** The credentials may not read the prefix: the watch has stopped. */
  denied(err: Error): void;
}

export class ClientRegistryWatch {
  private readonly zones = new Map<string, string>();
  private readonly sortedIds: string[] = [];
  private readonly zoneCounts = new Map<string, number>();
  private readonly pager: Pager;
  private watcher: Watcher | undefined;
  private readonly retry: ResyncTimer;
  private generation = 0;
  private closed = false;

  constructor(
    private readonly prefix: string,
    private readonly selfId: string,
    private readonly client: Etcd3,
    private readonly options: ResolvedResolverOptions,
    private readonly owner: ClientRegistryWatchOwner,
  ) {
    this.pager = { pageSize: options.pageSize };
    this.retry = new ResyncTimer(options);
  }

  start(): void {
    this.listThenWatch(this.generation);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    abandonWatcher(this.watcher);
    this.watcher = undefined;
    this.retry.clear();
  }

  view(): ClientRegistryView {
    const at = sortedIndex(this.sortedIds, this.selfId);
    return {
      selfIndex: this.sortedIds[at] === this.selfId ? at : undefined,
      clientCount: this.sortedIds.length,
      zoneCounts: new Map(this.zoneCounts),
    };
  }

  private listThenWatch(generation: number): void {
    listPrefix(this.client, this.prefix, this.pager, this.options.listTimeoutMs).then(listing => {
      if (generation !== this.generation) return;
      const present = new Set<string>();
      let changed = false;
      for (const kv of listing.kvs) {
        const id = kv.key.slice(this.prefix.length);
        present.add(id);
        changed = this.put(id, decodeClientZone(Buffer.from(kv.value))) || changed;
      }
      for (const id of [...this.zones.keys()]) if (!present.has(id)) changed = this.remove(id) || changed;
      trace(`${this.prefix}: ${this.sortedIds.length} clients at revision ${listing.revision}`);
      if (changed || listing.kvs.length === 0) this.owner.changed(this.view());
      this.startWatch(generation, listing.revision + 1);
    }, (err: unknown) => {
      if (generation !== this.generation) return;
      if (err instanceof EtcdPermissionDeniedError) {
        this.close();
        this.owner.denied(err);
        return;
      }
      this.scheduleResync(`list failed: ${(err as Error)?.message}`);
    });
  }

  private startWatch(generation: number, fromRevision: number): void {
    const watcher = this.client.watch().prefix(this.prefix).startRevision(String(fromRevision)).watcher();
    this.watcher = watcher;
    watcher.on('connected', () => {
      if (generation === this.generation) this.retry.reset();
    });
    watcher.on('data', (res: IWatchResponse) => {
      if (generation !== this.generation) return;
      let changed = false;
      for (const event of res.events) {
        const id = event.kv.key.toString('utf8').slice(this.prefix.length);
        changed = (event.type === 'Delete' ? this.remove(id) : this.put(id, decodeClientZone(event.kv.value))) || changed;
      }
      if (changed) this.owner.changed(this.view());
    });
    const lost = (err: Error): void => {
      if (generation === this.generation) this.scheduleResync(`watch ended: ${err?.message}`);
    };
    watcher.on('disconnected', lost);
    watcher.on('error', lost);
  }

  private put(id: string, zone: string): boolean {
    const previous = this.zones.get(id);
    if (previous === zone) return false;
    if (previous === undefined) {
      this.sortedIds.splice(sortedIndex(this.sortedIds, id), 0, id);
    } else {
      this.count(previous, -1);
    }
    this.zones.set(id, zone);
    this.count(zone, 1);
    return true;
  }

  private remove(id: string): boolean {
    const zone = this.zones.get(id);
    if (zone === undefined) return false;
    this.zones.delete(id);
    this.sortedIds.splice(sortedIndex(this.sortedIds, id), 1);
    this.count(zone, -1);
    return true;
  }

  private count(zone: string, delta: number): void {
    const next = (this.zoneCounts.get(zone) ?? 0) + delta;
    if (next === 0) this.zoneCounts.delete(zone);
    else this.zoneCounts.set(zone, next);
  }

  /** Abandons the current list/watch; lists again after the backoff delay. */
  private scheduleResync(reason: string): void {
    const generation = ++this.generation;
    abandonWatcher(this.watcher);
    this.watcher = undefined;
    const delayMs = this.retry.schedule(() => {
      if (generation === this.generation) this.listThenWatch(generation);
    });
    trace(`${this.prefix}: ${reason}; listing again in ${delayMs} ms`);
  }
}
