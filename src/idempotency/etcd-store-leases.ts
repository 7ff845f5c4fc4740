/**
 * The etcd store's leases: this process's claim lease (granted on the first claim, kept alive
 * every TTL/3 by one loop; when lost, dropped and granted again on the next claim) and the
 * result leases (one per second per `ttlMs`: a grant per second, not per call). Every call is
 * bounded by a timeout, so an unreachable etcd makes it reject, never hang.
 */
import { type Etcd3 } from 'etcd3';
import { log, logVerbosity } from '../common/grpc-experimental';
import { grantLease, keepAliveOnce, revokeLease } from '../backends/etcd/lease-ops';

export { withTimeout } from '../backends/etcd/lease-ops';

/** Results recorded within this window share one lease (they live ttlMs to ttlMs + this). */
export const RESULT_LEASE_SHARE_MS = 1000;

/** The leases of one store (see the file comment). */
export class IdempotencyLeases {
  private claim: Promise<string> | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private lastKeepAliveMs = 0;
  private readonly results = new Map<number, { id: Promise<string>; grantedAtMs: number }>();
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly claimTtlSeconds: number,
    private readonly timeoutMs: number,
  ) {}

  private grant(ttlSeconds: number): Promise<string> {
    return grantLease(this.client, ttlSeconds, this.timeoutMs);
  }

  /** This process's claim lease; one keep-alive loop per lease, a lost lease is dropped and the next claim grants anew. */
  claimLease(): Promise<string> {
    if (this.closed) return Promise.reject(new Error('grpc-etcd-lb idempotency store: closed'));
    if (this.claim !== undefined) return this.claim;
    const lease = this.grant(this.claimTtlSeconds);
    this.claim = lease;
    lease.then(id => {
      this.lastKeepAliveMs = Date.now();
      this.scheduleKeepAlive(lease, id);
    }, () => {
      if (this.claim === lease) this.claim = undefined;
    });
    return lease;
  }

  private scheduleKeepAlive(lease: Promise<string>, id: string): void {
    if (this.closed || this.claim !== lease) return;
    this.keepAliveTimer = setTimeout(() => void this.keepAlive(lease, id), (this.claimTtlSeconds * 1000) / 3);
    this.keepAliveTimer.unref();
  }

  private async keepAlive(lease: Promise<string>, id: string): Promise<void> {
    let ttl: number;
    try {
      ttl = await this.keepAliveOnce(id);
    } catch {
      // etcd unreachable: keep trying while the lease may still be alive on its side.
      ttl = Date.now() - this.lastKeepAliveMs > this.claimTtlSeconds * 1000 ? 0 : -1;
    }
    if (ttl > 0) this.lastKeepAliveMs = Date.now();
    if (ttl === 0) {
      if (this.claim === lease) this.claim = undefined;
      log(logVerbosity.ERROR, `grpc-etcd-lb idempotency store: claim lease ${id} lost; claims held by this process lapsed (a new lease is granted on the next claim)`);
      return;
    }
    this.scheduleKeepAlive(lease, id);
  }

  private keepAliveOnce(id: string): Promise<number> {
    return keepAliveOnce(this.client, id, this.timeoutMs);
  }

  /** A lease for results recorded now with `ttlMs`: shared for `RESULT_LEASE_SHARE_MS`, so they live ttlMs to ttlMs + 1 s. */
  resultLease(ttlMs: number): Promise<string> {
    const now = Date.now();
    const current = this.results.get(ttlMs);
    if (current !== undefined && now - current.grantedAtMs < RESULT_LEASE_SHARE_MS) return current.id;
    const id = this.grant(Math.ceil((ttlMs + RESULT_LEASE_SHARE_MS) / 1000));
    const entry = { id, grantedAtMs: now };
    this.results.set(ttlMs, entry);
    id.catch(() => {
      if (this.results.get(ttlMs) === entry) this.results.delete(ttlMs);
    });
    return id;
  }

  /** Stops the keep-alive and revokes the claim lease (its claims vanish at once); best effort. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.keepAliveTimer);
    const lease = this.claim;
    this.claim = undefined;
    if (lease === undefined) return;
    try {
      const id = await lease;
      await revokeLease(this.client, id, this.timeoutMs);
    } catch {
      // Gone already, or etcd unreachable: the lease expires by itself.
    }
  }
}
