/**
 * One service on one ZooKeeper connection, shared by channels. Watches are one-shot, so
 * each is re-armed by the read that answers it (no change between is lost). A new
 * session lists again in full; within a session the client re-sends our watches.
 */
import { DiscoveryWatch, plural } from '../../discovery/discovery-watch';
import { type DiscoveryKeyValue } from '../../discovery/endpoint-table';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { decodeCuratorInstance } from './curator-codec';
import { hex, zkErrorCode, type ZkEvent, type ZkStat } from './zk-client';
import { type SessionEvent, type ZkSession } from './zk-session';

/** Time to wait for a first connection before channels are told ZooKeeper is unreachable (calls then fail fast). */
export const CONNECT_REPORT_MS = 1_000;

export class ZkServiceWatch extends DiscoveryWatch {
  /** Bumped on a new session and on close: callbacks of an older one are ignored. */
  private generation = 0;
  private unsubscribe: (() => void) | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private failingSinceMs: number | undefined;
  private lastFailure: string | undefined;
  /** A children read is in flight / another one was asked for meanwhile. */
  private reading = false;
  private readAgain = false;
  private readonly childWatcher = (event: ZkEvent): void => this.onChildEvent(event);
  private readonly dataWatcher = (event: ZkEvent): void => this.onDataEvent(event);
  private readonly existsWatcher = (): void => this.readChildren(this.generation);

  constructor(
    service: string,
    private readonly path: string,
    private readonly session: ZkSession,
    options: ResolvedResolverOptions,
    warn: (text: string) => void,
  ) {
    super(service, session.label, options, warn, decodeCuratorInstance, 'zookeeper_resolver');
  }

  start(): void {
    this.trace(`start (${this.path})`);
    this.failingSinceMs = Date.now();
    this.unsubscribe = this.session.on(event => this.onSession(event));
    this.session.start();
    if (this.session.connected) this.listAll();
    else this.scheduleReport();
  }

  protected stop(): void {
    this.generation++;
    this.unsubscribe?.();
    clearTimeout(this.reportTimer);
  }

  private onSession(event: SessionEvent): void {
    if (event.type === 'connected') {
      clearTimeout(this.reportTimer);
      this.reportTimer = undefined;
      this.metrics?.watchConnected();
      if (event.newSession || !this.hasList) this.listAll();
      else this.readChildren(this.generation);
    } else if (event.type === 'expired') {
      // Every watch went with the session; the next 'connected' lists again in full.
      this.generation++;
      this.reading = false;
      this.metrics?.watchEnded();
      this.noteFailure(`session ${event.sessionId} expired`);
    } else {
      this.metrics?.failed('watch');
      this.noteFailure('disconnected');
    }
  }

  private noteFailure(text: string): void {
    this.failingSinceMs ??= Date.now();
    this.lastFailure = text;
    this.trace(`${text}; serving the last list`);
    if (!this.hasList) this.scheduleReport();
  }

  /** While no list was ever obtained: tell channels, every second, how long ZooKeeper has been out of reach. */
  private scheduleReport(): void {
    if (this.reportTimer || this.closed) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      if (this.closed || this.hasList) return;
      if (!this.session.connected) {
        const sinceMs = this.failingSinceMs ?? Date.now();
        const last = this.lastFailure ? `; last error: ${this.lastFailure}` : '';
        this.failedBeforeFirstList(`zookeeper resolver: cannot read service '${this.service}' (${this.path}) from ZooKeeper ${this.label}: ` +
          `unreachable since ${new Date(sinceMs).toISOString().slice(11, 23)} UTC (${((Date.now() - sinceMs) / 1000).toFixed(1)} s), retrying${last}`);
      }
      this.scheduleReport();
    }, CONNECT_REPORT_MS);
    this.reportTimer.unref();
  }

  /** A full listing: children (watch armed) and every instance's data (watches armed), then one `replaceAll`. */
  private listAll(): void {
    const generation = ++this.generation;
    this.reading = false;
    this.metrics?.relisted();
    const startedMs = Date.now();
    this.getChildren(generation).then(async children => {
      if (generation !== this.generation) return;
      const kvs: DiscoveryKeyValue[] = [];
      await Promise.all(children.map(async child => {
        const kv = await this.getData(generation, child);
        if (kv) kvs.push(kv);
      }));
      if (generation !== this.generation) return;
      this.failingSinceMs = undefined;
      this.lastFailure = undefined;
      this.resetBackoff();
      this.metrics?.listed();
      const changed = this.table.replaceAll(kvs);
      this.trace(`listed ${plural(children.length, 'instance')} in ${Date.now() - startedMs} ms`);
      if (changed || !this.hasList) this.markChanged(0);
    }).catch((err: unknown) => this.readFailed(generation, 'list', err, () => this.listAll()));
  }

  /** The children changed (or the connection came back): re-read them, re-arming the watch; read new ones. */
  private readChildren(generation: number): void {
    if (generation !== this.generation || this.closed) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    this.getChildren(generation).then(async children => {
      if (generation !== this.generation) return;
      const present = new Set(children);
      let changed = false;
      for (const key of this.table.keys()) {
        if (!present.has(key)) changed = this.table.delete(key) || changed;
      }
      const fresh = children.filter(child => !this.table.has(child));
      const kvs = await Promise.all(fresh.map(child => this.getData(generation, child)));
      if (generation !== this.generation) return;
      for (const kv of kvs) if (kv) changed = this.table.put(kv) || changed;
      if (changed) this.markChanged(this.options.coalesceWindowMs);
    }).catch((err: unknown) => this.readFailed(generation, 'watch', err, () => this.readChildren(this.generation)))
      .finally(() => {
        if (generation !== this.generation) return;
        this.reading = false;
        if (this.readAgain) {
          this.readAgain = false;
          this.readChildren(generation);
        }
      });
  }

  private onChildEvent(event: ZkEvent): void {
    if (event.type === this.session.lib.Event.NODE_CHILDREN_CHANGED || event.type === this.session.lib.Event.NODE_DELETED) {
      this.readChildren(this.generation);
    }
  }

  private onDataEvent(event: ZkEvent): void {
    const child = event.path.slice(this.path.length + 1);
    const generation = this.generation;
    if (event.type === this.session.lib.Event.NODE_DELETED) {
      if (this.table.delete(child)) this.markChanged(this.options.coalesceWindowMs);
      return;
    }
    if (event.type !== this.session.lib.Event.NODE_DATA_CHANGED) return;
    this.getData(generation, child).then(kv => {
      if (generation !== this.generation) return;
      const changed = kv ? this.table.put(kv) : this.table.delete(child);
      if (changed) this.markChanged(this.options.coalesceWindowMs);
    }, (err: unknown) => this.readFailed(generation, 'watch', err, () => this.readChildren(this.generation)));
  }

  /** Children of the service node, child watch armed; a missing node is no instances (an exists watch waits for it). */
  private async getChildren(generation: number): Promise<string[]> {
    const { lib } = this.session;
    try {
      return await this.session.call<string[]>('list', this.options.listTimeoutMs, (client, done) =>
        client.getChildren(this.path, this.childWatcher, (err, children) => done(err, children)));
    } catch (err) {
      if (zkErrorCode(err) !== lib.Exception.NO_NODE) throw err;
    }
    const stat = await this.session.call<ZkStat | null>('exists', this.options.listTimeoutMs, (client, done) =>
      client.exists(this.path, this.existsWatcher, (err, s) => done(err, s)));
    // Created between the two reads: its exists watch has fired already; read it now.
    if (stat && generation === this.generation) return this.getChildren(generation);
    return [];
  }

  /** One instance's data, data watch armed; undefined when it is gone already. */
  private async getData(generation: number, child: string): Promise<DiscoveryKeyValue | undefined> {
    try {
      const [data, stat] = await this.session.call<[Buffer | null, ZkStat]>('read', this.options.listTimeoutMs, (client, done) =>
        client.getData(`${this.path}/${child}`, this.dataWatcher, (err, d, s) => done(err, [d, s])));
      if (generation === this.generation) this.revision = Math.max(this.revision, Number(stat.mzxid.readBigUInt64BE(0)));
      return { key: child, value: data ?? Buffer.alloc(0), modRevision: hex(stat.mzxid) };
    } catch (err) {
      if (zkErrorCode(err) === this.session.lib.Exception.NO_NODE) return undefined;
      throw err;
    }
  }

  /** Connection loss / expiry: 'connected' reads again; anything else retries after a backoff. */
  private readFailed(generation: number, kind: 'list' | 'watch', err: unknown, retry: () => void): void {
    if (generation !== this.generation || this.closed) return;
    const code = zkErrorCode(err);
    const { Exception } = this.session.lib;
    this.metrics?.failed(kind);
    const message = (err as Error)?.message ?? String(err);
    this.lastFailure = message;
    if (!this.hasList) this.scheduleReport();
    if ((code === Exception.CONNECTION_LOSS || code === Exception.SESSION_EXPIRED) && !this.session.connected) {
      this.trace(`${kind} failed (${message}); reading again when connected`);
      return;
    }
    this.retryLater(`${kind} failed: ${message}`, retry);
  }
}
