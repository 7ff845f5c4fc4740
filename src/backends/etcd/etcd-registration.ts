/**
 * etcd's `Registration`: key `<service>/<address>` under a lease, kept alive, and
 * written again whenever lost, until `close()`. The loop is the discovery core's;
 * this is the etcd half: leases and keys.
 */
import { EtcdLeaseInvalidError, type Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { acquireEtcdClient, connectionKey, type EtcdClientLease, type EtcdOptions } from './connection';
import { encodeEndpointValue, endpointKey } from './endpoint-codec';
import { describeEtcdFailure } from './etcd-error';
import { tracer } from '../../common/grpc-experimental';
import { RegistrationCore } from '../../discovery/registration-core';
import { type LostReason } from '../../discovery/registration-events';
import { type ResolvedRegistrationOptions } from '../../discovery/registration-options';
import { deleteKeyOfLease, grantLease, keepAliveOnce, putWithLease, revokeLease, withTimeout } from './lease-ops';

const trace = tracer('etcd_registry');

/** Pool name: registrations get their own etcd3 client, so resolver failures never trip their circuit breaker. */
export const REGISTRY_POOL_NAME = 'registry';

/** Floor and ceiling of the time one etcd operation may take. */
const MIN_OP_TIMEOUT_MS = 500;
const MAX_OP_TIMEOUT_MS = 5_000;

/** A key and value written instead of `<service>/<address>` (the client registry's announcements); no endpoint metrics. */
export interface LeasedAnnouncement {
  readonly key: string;
  readonly value: string;
}

/** The implementation behind `registerEndpoint` for etcd. Starts its loop on construction. */
export class EtcdRegistration extends RegistrationCore {
  readonly key: string;

  private readonly client: Etcd3;
  private readonly clientLease: EtcdClientLease;
  private readonly opTimeoutMs: number;
  private currentLeaseId: string | undefined;
  /** The lease was confirmed alive moments ago (skip the check before the next put). */
  private leaseJustVerified = false;
  private lastAckAt = 0;
  /** The lease held when the loss was noticed: `leaseKept` means we are back under this one. */
  private lostLeaseId: string | undefined;
  private nextBeatAt = 0;
  private lastPutRevision = 0;
  private watcher: Watcher | undefined;
  /** Revision of the last delete of our key seen by the watch (by someone else, or with the lease). */
  private deletedAtRevision = 0;

  constructor(options: ResolvedRegistrationOptions, private readonly etcd: EtcdOptions, private readonly announcement?: LeasedAnnouncement) {
    super(options, text => trace(text), announcement === undefined);
    this.key = announcement?.key ?? endpointKey(options.service, options.address);
    this.opTimeoutMs = Math.min(MAX_OP_TIMEOUT_MS, Math.max(MIN_OP_TIMEOUT_MS, this.ttlMs / 3));
    const activeKey = `${connectionKey(this.etcd, REGISTRY_POOL_NAME)}\n${this.key}`;
    this.clientLease = acquireEtcdClient(this.etcd, REGISTRY_POOL_NAME);
    this.client = this.clientLease.client;
    try {
      this.begin(activeKey, `'${this.key}' is already registered by this process on this etcd`);
    } catch (err) {
      this.clientLease.release();
      this.metrics?.close();
      throw err;
    }
  }

  get leaseId(): string | undefined { return this.currentLeaseId; }

  protected override get registryName(): string {
    return 'etcd';
  }

  protected registerTimeoutMessage(timeoutMs: number): string {
    const failure = this.lastError === undefined ? undefined : describeEtcdFailure(this.lastError);
    const last = failure ? ` (last error: ${failure.cause})` : '';
    return `registerEndpoint: etcd at ${describeHosts(this.etcd.hosts)} did not accept '${this.key}' within ${timeoutMs} ms${last}`;
  }

  /** etcd3's "circuit breaker is open" only repeats an earlier failure: keep that one as the cause. */
  protected override explains(cause: unknown): boolean {
    return describeEtcdFailure(cause) !== undefined;
  }

  protected async deregister(deadline: number): Promise<void> {
    const watcher = this.watcher;
    this.watcher = undefined;
    // Stop reacting to our own key first: the delete below is ours.
    watcher?.removeAllListeners();
    watcher?.on('error', () => undefined);
    const leaseId = this.currentLeaseId;
    if (leaseId !== undefined) {
      // The key goes first (by the warm transaction method) so clients see it go at once; the
      // watch is cancelled last, since a cancel waits for etcd's answer.
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
  }

  protected release(): void {
    this.clientLease.release();
  }

  protected async step(): Promise<void> {
    if (this.currentState !== 'registered') {
      this.operation = 'register';
      await this.establish();
    } else if (this.deletedAtRevision > this.lastPutRevision) {
      this.operation = 'keepalive';
      await this.diagnoseDelete();
    } else if (this.writtenGeneration < this.valueGeneration || this.watcher === undefined) {
      this.operation = 'put';
      await this.rewrite();
    } else if (Date.now() < this.nextBeatAt) {
      await this.sleep(this.nextBeatAt - Date.now(), true);
    } else {
      this.operation = 'keepalive';
      await this.beat();
    }
  }

  /** Gets a live lease (the old one if etcd still has it) and puts the key under it. */
  private async establish(): Promise<void> {
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
    this.nextBeatAt = Date.now() + this.ttlMs / 3;
    const leaseId = this.currentLeaseId as string;
    // Not "the lease we started this attempt with": an earlier attempt may have granted it (and failed its put).
    this.markRegistered(leaseId, leaseId === this.lostLeaseId);
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
    this.valueWritten(generation);
    if (this.watcher === undefined && !this.closing) this.watchKey(revision + 1);
  }

  /** A put while registered: a new value (update) or a re-sync after the watch broke. */
  private async rewrite(): Promise<void> {
    const leaseId = this.currentLeaseId as string;
    try {
      await this.putValue();
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError) {
        this.leaseLost('lease-lost', leaseId);
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
        this.leaseLost('unreachable', leaseId, err);
      } else {
        // Retry with backoff, but also look again right when the TTL runs out, so the loss is reported on time.
        this.nextBeatAt = Math.min(Date.now() + this.backoff.next(), this.lastAckAt + this.ttlMs + 1);
      }
      return;
    }
    if (ttl <= 0) {
      this.currentLeaseId = undefined;
      this.leaseLost('lease-lost', leaseId);
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
    this.leaseLost(reason, leaseId);
  }

  private leaseLost(reason: LostReason, leaseId: string, error?: unknown): void {
    if (this.closing) return;
    this.lostLeaseId = leaseId;
    this.markLost(reason, leaseId, error);
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
}

function describeHosts(hosts: string[] | string): string {
  return Array.isArray(hosts) ? hosts.join(',') : hosts;
}
