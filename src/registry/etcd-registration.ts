/**
 * `EtcdRegistration`, the implementation of `Registration`: key
 * `<service>/<address>` under a lease, kept alive, and written again by itself
 * whenever it is lost (etcd outage longer than the TTL, lease revoked, key
 * deleted by someone else), until `close()`.
 *
 * Everything that talks to etcd runs in ONE loop per registration, one
 * operation at a time, each bounded in time (shared/notes/etcd.md: a server
 * that started a new re-grant loop on every `lost` stalled its own calls).
 */
import { EtcdLeaseInvalidError, type Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { acquireEtcdClient, connectionKey, type EtcdClientLease } from '../etcd/connection';
import { encodeEndpointValue, endpointKey } from '../etcd/endpoint-codec';
import { describeEtcdFailure } from '../etcd/etcd-error';
import { tracer } from '../grpc-experimental';
import { currentMetrics } from '../metrics/metrics-binding';
import { type RegistrationMetrics } from '../metrics/registry-metrics';
import { deleteKeyOfLease, grantLease, keepAliveOnce, putWithLease, revokeLease, withTimeout } from './lease-ops';
import {
  RegistrationError, TypedEvent, type Disposer, type LostEvent, type LostReason, type RegisteredEvent,
} from './registration-events';
import { type Registration, type RegistrationState } from './registration';
import {
  MAX_REREGISTER_BACKOFF_MS, resolveEndpointUpdate,
  type EndpointUpdate, type ResolvedRegistrationOptions, type ServingStatus,
} from './registration-options';
import { ReregisterBackoff } from './reregister-backoff';

const trace = tracer('etcd_registry');

/** Pool name: registrations get their own etcd3 client, so resolver failures never trip their circuit breaker. */
export const REGISTRY_POOL_NAME = 'registry';

/** Floor and ceiling of the time one etcd operation may take. */
const MIN_OP_TIMEOUT_MS = 500;
const MAX_OP_TIMEOUT_MS = 5_000;

/** Keys registered by this process, per connection: a second registration of the same key would fight the first. */
const activeKeys = new Set<string>();

/**
 * A key and value written instead of the endpoint's `<service>/<address>` (the client
 * registry announces processes this way): same lease, keep-alive and self-healing,
 * no endpoint metrics.
 */
export interface LeasedAnnouncement {
  readonly key: string;
  readonly value: string;
}

interface UpdateWaiter {
  generation: number;
  resolve(): void;
  reject(err: Error): void;
}

/** The implementation behind `registerEndpoint`. Starts its loop on construction. */
export class EtcdRegistration implements Registration {
  readonly service: string;
  readonly address: string;
  readonly key: string;

  get reportsHealth(): boolean {
    return this.options.health !== undefined;
  }

  private readonly client: Etcd3;
  private readonly clientLease: EtcdClientLease;
  private readonly activeKey: string;
  private readonly ttlMs: number;
  private readonly opTimeoutMs: number;
  private readonly backoff: ReregisterBackoff;
  private readonly lost = new TypedEvent<LostEvent>(err => this.listenerFailed(err));
  private readonly registered = new TypedEvent<RegisteredEvent>(err => this.listenerFailed(err));
  private readonly errors = new TypedEvent<RegistrationError>(err => this.listenerFailed(err));
  /** Set when a MeterProvider was installed before this registration. */
  private readonly metrics: RegistrationMetrics | undefined;

  private currentState: RegistrationState = 'registering';
  private currentLeaseId: string | undefined;
  /** The lease was confirmed alive moments ago (skip the check before the next put). */
  private leaseJustVerified = false;
  private lastAckAt = 0;
  private lossNoticedAt = 0;
  /** The lease held when the loss was noticed: `leaseKept` means we are back under this one. */
  private lostLeaseId: string | undefined;
  private nextBeatAt = 0;
  private lastPutRevision = 0;
  private value: { weight: number; priority: number; metadata: Record<string, unknown> };
  private valueGeneration = 1;
  private writtenGeneration = 0;
  private readonly updateWaiters: UpdateWaiter[] = [];
  private watcher: Watcher | undefined;
  /** Revision of the last delete of our key seen by the watch (by someone else, or with the lease). */
  private deletedAtRevision = 0;
  private serving = true;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private lastError: unknown;
  private wake: { any: boolean; resolve: () => void } | undefined;
  private firstPut: { resolve: () => void; promise: Promise<void> };
  private readonly loopDone: Promise<void>;

  constructor(private readonly options: ResolvedRegistrationOptions, private readonly announcement?: LeasedAnnouncement) {
    this.service = options.service;
    this.address = options.address;
    this.key = announcement?.key ?? endpointKey(options.service, options.address);
    this.activeKey = `${connectionKey(options.etcd, REGISTRY_POOL_NAME)}\n${this.key}`;
    if (activeKeys.has(this.activeKey)) {
      throw new Error(`registerEndpoint: '${this.key}' is already registered by this process on this etcd; close() it first, or use update()`);
    }
    this.ttlMs = options.ttlSeconds * 1000;
    this.opTimeoutMs = Math.min(MAX_OP_TIMEOUT_MS, Math.max(MIN_OP_TIMEOUT_MS, this.ttlMs / 3));
    this.backoff = new ReregisterBackoff({ maxMs: Math.min(MAX_REREGISTER_BACKOFF_MS, this.ttlMs / 2) });
    this.value = { weight: options.weight, priority: options.priority, metadata: options.metadata };
    let resolveFirst = (): void => undefined;
    this.firstPut = { resolve: () => resolveFirst(), promise: new Promise<void>(resolve => { resolveFirst = resolve; }) };
    activeKeys.add(this.activeKey);
    this.metrics = announcement ? undefined : currentMetrics()?.registry.track(this.service, this.address, () => this.currentState);
    this.clientLease = acquireEtcdClient(options.etcd, REGISTRY_POOL_NAME);
    this.client = this.clientLease.client;
    this.loopDone = this.run();
  }

  get leaseId(): string | undefined { return this.currentLeaseId; }
  get state(): RegistrationState { return this.currentState; }

  onLost(listener: (event: LostEvent) => void): Disposer { return this.lost.on(listener); }
  onRegistered(listener: (event: RegisteredEvent) => void): Disposer { return this.registered.on(listener); }
  onError(listener: (error: RegistrationError) => void): Disposer { return this.errors.on(listener); }

  /** Resolves after the first put; rejects after `timeoutMs` with the last error seen. */
  async waitRegistered(timeoutMs: number): Promise<void> {
    try {
      await withTimeout(this.firstPut.promise, timeoutMs, 'registerEndpoint');
    } catch {
      const failure = this.lastError === undefined ? undefined : describeEtcdFailure(this.lastError);
      const last = failure ? ` (last error: ${failure.cause})` : '';
      throw new Error(`registerEndpoint: etcd at ${describeHosts(this.options.etcd.hosts)} did not accept '${this.key}' within ${timeoutMs} ms${last}`);
    }
  }

  async update(update: EndpointUpdate): Promise<void> {
    if (this.closing) throw new Error(`Registration.update: '${this.key}' is closed`);
    const u = resolveEndpointUpdate(update, 'Registration.update');
    this.value = {
      weight: u.weight ?? this.value.weight,
      priority: u.priority ?? this.value.priority,
      metadata: u.metadata ?? this.value.metadata,
    };
    const generation = ++this.valueGeneration;
    const written = new Promise<void>((resolve, reject) => this.updateWaiters.push({ generation, resolve, reject }));
    this.wakeLoop(true);
    try {
      await withTimeout(written, this.options.registerTimeoutMs, 'Registration.update');
    } catch (err) {
      const i = this.updateWaiters.findIndex(w => w.generation === generation);
      if (i >= 0) this.updateWaiters.splice(i, 1);
      throw err;
    }
  }

  setServing(serving: boolean): void {
    if (this.closing) return;
    this.serving = serving;
    this.applyHealth(serving ? 'SERVING' : 'NOT_SERVING');
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    const deadline = Date.now() + this.options.closeTimeoutMs;
    this.closing = true;
    this.applyHealth('NOT_SERVING');
    this.wakeLoop(false);
    // Let an in-flight operation finish (each is bounded), so a lease it just granted is revoked by the loop.
    await withTimeout(this.loopDone, Math.max(1, (deadline - Date.now()) / 2), 'close').catch(() => undefined);
    const watcher = this.watcher;
    this.watcher = undefined;
    // Stop reacting to our own key first: the delete below is ours.
    watcher?.removeAllListeners();
    watcher?.on('error', () => undefined);
    const leaseId = this.currentLeaseId;
    if (leaseId !== undefined) {
      // The key goes first, by the transaction method the puts keep warm, so clients see it go
      // at once; the revoke then ends the lease, and the watch is cancelled last (a cancel waits
      // for etcd's answer: 70-150 ms before the key went, when it came first).
      try {
        await deleteKeyOfLease(this.client, this.key, leaseId, Math.max(1, deadline - Date.now()));
      } catch (err) {
        this.reportError('close', err);
      }
      try {
        await revokeLease(this.client, leaseId, Math.max(1, deadline - Date.now()));
        trace(`${this.key}: closed, lease ${leaseId} revoked`);
      } catch (err) {
        this.reportError('close', err);
      }
    }
    if (watcher) await withTimeout(watcher.cancel(), Math.max(1, deadline - Date.now()), 'watch cancel').catch(() => undefined);
    this.currentState = 'closed';
    for (const w of this.updateWaiters.splice(0)) w.reject(new Error(`Registration.update: '${this.key}' was closed before the value was written`));
    activeKeys.delete(this.activeKey);
    this.metrics?.close();
    this.clientLease.release();
    this.lost.clear();
    this.registered.clear();
    this.errors.clear();
  }

  /** The one loop: establish, keep alive, react to deletes and updates, until closed. */
  private async run(): Promise<void> {
    let operation = 'put';
    while (!this.closing) {
      try {
        if (this.currentState !== 'registered') {
          operation = 'register';
          await this.establish();
        } else if (this.deletedAtRevision > this.lastPutRevision) {
          operation = 'keepalive';
          await this.diagnoseDelete();
        } else if (this.writtenGeneration < this.valueGeneration || this.watcher === undefined) {
          operation = 'put';
          await this.rewrite();
        } else if (Date.now() < this.nextBeatAt) {
          await this.sleep(this.nextBeatAt - Date.now(), true);
        } else {
          operation = 'keepalive';
          await this.beat();
        }
      } catch (err) {
        if (this.closing) break;
        this.reportError(operation, err);
        await this.sleep(this.backoff.next(), false);
      }
    }
  }

  /** Gets a live lease (the old one if etcd still has it) and puts the key under it. */
  private async establish(): Promise<void> {
    const initial = this.currentState === 'registering';
    if (this.currentLeaseId !== undefined) {
      if (!this.leaseJustVerified && await keepAliveOnce(this.client, this.currentLeaseId, this.opTimeoutMs) <= 0) {
        this.currentLeaseId = undefined;
      } else {
        this.lastAckAt = Date.now();
      }
      this.leaseJustVerified = false;
    }
    if (this.currentLeaseId === undefined) {
      const leaseId = await grantLease(this.client, this.options.ttlSeconds, this.opTimeoutMs);
      if (this.closing) {
        await revokeLease(this.client, leaseId, this.opTimeoutMs).catch(() => undefined);
        return;
      }
      this.currentLeaseId = leaseId;
      this.lastAckAt = Date.now();
    }
    await this.putValue();
    if (this.closing) return;
    this.currentState = 'registered';
    this.backoff.reset();
    this.nextBeatAt = Date.now() + this.ttlMs / 3;
    const leaseId = this.currentLeaseId;
    if (initial) {
      trace(`${this.key}: registered under lease ${leaseId}`);
      this.applyHealth(this.serving ? 'SERVING' : 'NOT_SERVING');
      this.firstPut.resolve();
      return;
    }
    // Not "the lease we started this attempt with": an earlier attempt may have granted it (and failed its put).
    const leaseKept = leaseId === this.lostLeaseId;
    const downtimeMs = Date.now() - this.lossNoticedAt;
    trace(`${this.key}: registered again after ${downtimeMs} ms under ${leaseKept ? 'the same' : 'a new'} lease ${leaseId}`);
    this.metrics?.reregistered(leaseKept, downtimeMs);
    this.registered.emit({ leaseId: leaseId as string, leaseKept, downtimeMs });
  }

  /** Writes the current value under the current lease, and makes sure the key is watched. */
  private async putValue(): Promise<void> {
    const leaseId = this.currentLeaseId as string;
    const generation = this.valueGeneration;
    let revision: number;
    try {
      revision = await putWithLease(this.client, this.key, this.announcement?.value ?? encodeEndpointValue({ address: this.address, ...this.value }), leaseId, this.opTimeoutMs);
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError && this.currentLeaseId === leaseId) this.currentLeaseId = undefined;
      throw err;
    }
    // A lower revision means etcd lost its data (a new cluster): the watch's start revision is meaningless there.
    if (revision < this.lastPutRevision) {
      this.dropWatcher();
      this.deletedAtRevision = 0;
    }
    this.lastPutRevision = revision;
    this.writtenGeneration = Math.max(this.writtenGeneration, generation);
    for (let i = this.updateWaiters.length - 1; i >= 0; i--) {
      const w = this.updateWaiters[i];
      if (w.generation <= generation) {
        this.updateWaiters.splice(i, 1);
        w.resolve();
      }
    }
    if (this.watcher === undefined && !this.closing) this.watchKey(revision + 1);
  }

  /** A put while registered: a new value (update) or a re-sync after the watch broke. */
  private async rewrite(): Promise<void> {
    const leaseId = this.currentLeaseId as string;
    try {
      await this.putValue();
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError) {
        this.markLost('lease-lost', leaseId);
        return;
      }
      throw err;
    }
  }

  /** One keep-alive. Out of contact for longer than the TTL counts as lost ('unreachable'). */
  private async beat(): Promise<void> {
    const leaseId = this.currentLeaseId as string;
    let ttl: number;
    try {
      ttl = await keepAliveOnce(this.client, leaseId, this.opTimeoutMs);
    } catch (err) {
      this.reportError('keepalive', err);
      if (Date.now() - this.lastAckAt > this.ttlMs) {
        this.markLost('unreachable', leaseId, err);
      } else {
        // Retry with backoff, but also look again right when the TTL runs out, so the loss is reported on time.
        this.nextBeatAt = Math.min(Date.now() + this.backoff.next(), this.lastAckAt + this.ttlMs + 1);
      }
      return;
    }
    if (ttl <= 0) {
      this.currentLeaseId = undefined;
      this.markLost('lease-lost', leaseId);
      return;
    }
    this.lastAckAt = Date.now();
    this.backoff.reset();
    this.nextBeatAt = this.lastAckAt + this.ttlMs / 3;
  }

  /** The key was deleted: by someone else (lease alive) or with the lease (expired/revoked). */
  private async diagnoseDelete(): Promise<void> {
    const leaseId = this.currentLeaseId as string;
    let reason: LostReason = 'key-deleted';
    try {
      if (await keepAliveOnce(this.client, leaseId, this.opTimeoutMs) <= 0) {
        reason = 'lease-lost';
        this.currentLeaseId = undefined;
      } else {
        this.lastAckAt = Date.now();
        this.leaseJustVerified = true;
      }
    } catch (err) {
      this.reportError('keepalive', err);
    }
    this.markLost(reason, leaseId);
  }

  private markLost(reason: LostReason, leaseId: string, error?: unknown): void {
    if (this.closing) return;
    this.currentState = 'lost';
    this.lossNoticedAt = Date.now();
    this.lostLeaseId = leaseId;
    trace(`${this.key}: lost (${reason}), lease ${leaseId}`);
    this.metrics?.lost(reason);
    this.lost.emit({ reason, leaseId, ...(error instanceof Error ? { error } : {}) });
  }

  /** Watches our key from `fromRevision`, so a delete by someone else is noticed at once. */
  private watchKey(fromRevision: number): void {
    // `.watcher()` attaches without waiting for etcd (`create()` would wait forever during an outage).
    const watcher = this.client.watch().key(this.key).startRevision(String(fromRevision)).watcher();
    this.watcher = watcher;
    watcher.on('delete', (kv: IKeyValue) => {
      if (watcher !== this.watcher || this.closing || Number(kv.mod_revision) <= this.lastPutRevision) return;
      trace(`${this.key}: key deleted at revision ${kv.mod_revision}`);
      this.deletedAtRevision = Math.max(this.deletedAtRevision, Number(kv.mod_revision));
      this.wakeLoop(true);
    });
    watcher.on('error', (err: Error) => {
      // Canceled by etcd (e.g. the revision was compacted): drop it; the loop re-puts and watches again.
      if (watcher !== this.watcher) return;
      this.reportError('watch', err);
      this.dropWatcher();
      this.wakeLoop(true);
    });
  }

  private dropWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) void watcher.cancel().catch(() => undefined);
  }

  /** Sleeps `ms`; `wakeable` sleeps also end on updates and deletes, every sleep ends on close. */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wake = { any: wakeable, resolve: done };
    });
  }

  private wakeLoop(onlyIfWakeable: boolean): void {
    if (this.wake && (this.wake.any || !onlyIfWakeable)) this.wake.resolve();
  }

  private applyHealth(status: ServingStatus): void {
    const health = this.options.health;
    if (!health) return;
    try {
      health.setStatus('', status);
      health.setStatus(this.service, status);
    } catch (err) {
      this.reportError('health', err);
    }
  }

  private reportError(operation: string, cause: unknown): void {
    // etcd3's "circuit breaker is open" only repeats an earlier failure: keep that one as the cause.
    if (describeEtcdFailure(cause) !== undefined) this.lastError = cause;
    const error = new RegistrationError(this.key, operation, cause);
    trace(error.message);
    this.metrics?.failed(operation);
    this.errors.emit(error);
  }

  private listenerFailed(err: unknown): void {
    trace(`${this.key}: a listener threw: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function describeHosts(hosts: string[] | string): string {
  return Array.isArray(hosts) ? hosts.join(',') : hosts;
}
