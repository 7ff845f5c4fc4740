/**
 * `createEtcdIdempotencyStore()`: the deduplication store every replica shares.
 * - claim: one transaction that creates `<prefix><key>` only if absent, under this
 *   process's lease (short TTL, kept alive): a replica that dies lets its claims lapse;
 * - result: the claim replaced (only if still ours: same mod revision) by the result under
 *   a lease of `ttlMs` (results of the same second share one lease: one grant per second,
 *   not per call);
 * - waiting: a watch on the key, then a read (no change between claim and watch is missed).
 * Every operation is bounded by a timeout: an unreachable etcd makes it reject, never hang.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { EtcdLeaseInvalidError, type Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { acquireEtcdClient, getDefaultEtcdOptions, validateEtcdOptions, type EtcdClientLease, type EtcdOptions } from '../backends/etcd/connection';
import { log, logVerbosity } from '../common/grpc-experimental';
import { decodeStoredValue, encodeClaim, encodeResult } from './etcd-store-codec';
import { type IdempotencyClaim, type IdempotencyClaimOutcome, type IdempotencyResult, type IdempotencyStore } from './idempotency-store';

const COMPONENT = 'grpc-etcd-lb idempotency store';
/** Results recorded within this window share one lease (they live ttlMs to ttlMs + this). */
const RESULT_LEASE_SHARE_MS = 1000;

/** Options of `createEtcdIdempotencyStore`. All optional; every field says its default. */
export interface EtcdIdempotencyStoreOptions {
  /** etcd connection (etcd3's `IOptions`). Defaults to `register({ etcd })`'s, else `ETCD_ENDPOINTS`. */
  etcd?: EtcdOptions;
  /**
   * Key prefix of the claims and results. The default lies under `_grpc_etcd_lb/`, which is
   * refused as a service name, so no channel ever resolves these keys as endpoints.
   * Defaults to `'_grpc_etcd_lb/idempotency/'`.
   */
  prefix?: string;
  /**
   * TTL of this process's claim lease: how long a key stays claimed after its owner died
   * (a retry then waits up to this long before it runs the handler). Integer ≥ 1. Defaults to 5.
   */
  claimTtlSeconds?: number;
  /** Bound on each etcd operation; past it the call fails closed (or open). Defaults to 2000. */
  operationTimeoutMs?: number;
}

/** The defaults of every `EtcdIdempotencyStoreOptions` field (`etcd` undefined = the default connection). */
export const DEFAULT_ETCD_IDEMPOTENCY_STORE_OPTIONS = Object.freeze({
  /** The default connection (`register({ etcd })`, else `ETCD_ENDPOINTS`). */
  etcd: undefined as EtcdOptions | undefined,
  /** Under the reserved `_grpc_etcd_lb/`. */
  prefix: '_grpc_etcd_lb/idempotency/',
  /** A dead owner's claims lapse within about 5 s. */
  claimTtlSeconds: 5,
  /** Each etcd operation is bounded by 2 s. */
  operationTimeoutMs: 2000,
});

const KNOWN_KEYS = new Set(Object.keys(DEFAULT_ETCD_IDEMPOTENCY_STORE_OPTIONS));

function fail(what: string, value: unknown): never {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  throw new TypeError(`${COMPONENT}: ${what}, got ${shown}`);
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: etcd did not answer within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class EtcdIdempotencyStore implements IdempotencyStore {
  private readonly connection: EtcdClientLease;
  private readonly client: Etcd3;
  private readonly owner = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  /** This process's claim lease, granted on first claim; dropped (and granted again) when lost. */
  private claimLease: Promise<string> | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private lastKeepAliveMs = 0;
  private readonly resultLeases = new Map<number, { id: Promise<string>; grantedAtMs: number }>();
  private readonly watchers = new Set<Watcher>();
  private closed = false;

  constructor(
    etcd: EtcdOptions,
    private readonly prefix: string,
    private readonly claimTtlSeconds: number,
    private readonly timeoutMs: number,
  ) {
    this.connection = acquireEtcdClient(etcd, 'idempotency');
    this.client = this.connection.client;
  }

  async claim(key: string, requestHash: string): Promise<IdempotencyClaimOutcome> {
    const leaseId = await this.currentClaimLease();
    const etcdKey = Buffer.from(this.prefix + key);
    const res = await withTimeout(this.client.kv.txn({
      compare: [{ key: etcdKey, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: etcdKey, value: Buffer.from(encodeClaim(requestHash, this.owner)), lease: leaseId } }],
      failure: [{ request_range: { key: etcdKey } }],
    }, this.callOptions()), this.timeoutMs, 'idempotency claim');
    if (res.succeeded) return { state: 'claimed', claim: { key, requestHash, token: res.header.revision } };
    const kv = res.responses[0]?.response_range?.kvs?.[0];
    // Deleted between the compare and the read cannot happen (one transaction); a foreign value is a conflict.
    const stored = kv === undefined ? undefined : decodeStoredValue(kv.value);
    if (stored === undefined) throw new Error(`idempotency claim: key '${this.prefix}${key}' holds a value this store did not write`);
    return stored.state === 'running' ? { state: 'running', requestHash: stored.requestHash } : { state: 'done', result: stored.result };
  }

  async complete(claim: IdempotencyClaim, result: IdempotencyResult, ttlMs: number): Promise<void> {
    const leaseId = await this.resultLease(ttlMs);
    const etcdKey = Buffer.from(this.prefix + claim.key);
    await withTimeout(this.client.kv.txn({
      compare: [{ key: etcdKey, target: 'Mod', result: 'Equal', mod_revision: claim.token }],
      success: [{ request_put: { key: etcdKey, value: Buffer.from(encodeResult(result)), lease: leaseId } }],
    }, this.callOptions()), this.timeoutMs, 'idempotency result');
  }

  async release(claim: IdempotencyClaim): Promise<void> {
    const etcdKey = Buffer.from(this.prefix + claim.key);
    await withTimeout(this.client.kv.txn({
      compare: [{ key: etcdKey, target: 'Mod', result: 'Equal', mod_revision: claim.token }],
      success: [{ request_delete_range: { key: etcdKey } }],
    }, this.callOptions()), this.timeoutMs, 'idempotency release');
  }

  async wait(key: string, signal: AbortSignal): Promise<IdempotencyResult | undefined> {
    if (signal.aborted) return undefined;
    const fullKey = this.prefix + key;
    return new Promise<IdempotencyResult | undefined>((resolve, reject) => {
      let watcher: Watcher | undefined;
      let settled = false;
      const settle = (value: IdempotencyResult | undefined, err?: unknown): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (watcher !== undefined) {
          this.watchers.delete(watcher);
          watcher.cancel().catch(() => undefined);
        }
        if (err === undefined) resolve(value);
        else reject(err as Error);
      };
      const onKv = (kv: IKeyValue | undefined): void => {
        const stored = kv === undefined ? undefined : decodeStoredValue(kv.value);
        if (stored === undefined) settle(undefined);
        else if (stored.state === 'done') settle(stored.result);
      };
      const onAbort = (): void => settle(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      this.client.watch().key(fullKey).create().then(async created => {
        watcher = created;
        if (settled) {
          created.cancel().catch(() => undefined);
          return;
        }
        this.watchers.add(created);
        created.on('put', kv => onKv(kv));
        created.on('delete', () => settle(undefined));
        created.on('error', err => settle(undefined, err));
        // The watch is in place: a read now cannot miss a change made before it.
        const res = await withTimeout(this.client.kv.range({ key: Buffer.from(fullKey) }, this.callOptions()), this.timeoutMs, 'idempotency wait');
        onKv(res.kvs[0]);
      }).catch((err: unknown) => settle(undefined, err));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.keepAliveTimer);
    for (const watcher of this.watchers) await watcher.cancel().catch(() => undefined);
    this.watchers.clear();
    const lease = this.claimLease;
    this.claimLease = undefined;
    if (lease !== undefined) {
      try {
        const id = await lease;
        await withTimeout(this.client.leaseClient.leaseRevoke({ ID: id }, this.callOptions()), this.timeoutMs, 'lease revoke');
      } catch {
        // Gone already, or etcd unreachable: the lease expires by itself.
      }
    }
    this.connection.release();
  }

  private callOptions(): { deadline: Date } {
    return { deadline: new Date(Date.now() + this.timeoutMs) };
  }

  private async grant(ttlSeconds: number): Promise<string> {
    const res = await withTimeout(this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }, this.callOptions()), this.timeoutMs, 'lease grant');
    if (res.error) throw new Error(`lease grant refused: ${res.error}`);
    return res.ID;
  }

  /** This process's claim lease; one keep-alive loop per lease, a lost lease is dropped and the next claim grants anew. */
  private currentClaimLease(): Promise<string> {
    if (this.closed) return Promise.reject(new Error(`${COMPONENT}: closed`));
    if (this.claimLease !== undefined) return this.claimLease;
    const lease = this.grant(this.claimTtlSeconds);
    this.claimLease = lease;
    lease.then(id => {
      this.lastKeepAliveMs = Date.now();
      this.scheduleKeepAlive(lease, id);
    }, () => {
      if (this.claimLease === lease) this.claimLease = undefined;
    });
    return lease;
  }

  private scheduleKeepAlive(lease: Promise<string>, id: string): void {
    if (this.closed || this.claimLease !== lease) return;
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
      if (this.claimLease === lease) this.claimLease = undefined;
      log(logVerbosity.ERROR, `${COMPONENT}: claim lease ${id} lost; claims held by this process lapsed (a new lease is granted on the next claim)`);
      return;
    }
    this.scheduleKeepAlive(lease, id);
  }

  private async keepAliveOnce(id: string): Promise<number> {
    const run = async (): Promise<number> => {
      const stream = await this.client.leaseClient.leaseKeepAlive(this.callOptions());
      return new Promise<number>((resolve, reject) => {
        stream.on('error', (err: Error) => reject(err));
        stream.on('end', () => reject(new Error('keep-alive stream ended without an answer')));
        stream.on('data', (res: { TTL: string }) => {
          resolve(Number(res.TTL));
          stream.end();
        });
        stream.write({ ID: id });
      });
    };
    try {
      return await withTimeout(run(), this.timeoutMs, 'lease keep-alive');
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError) return 0;
      throw err;
    }
  }

  /** A lease for results recorded now with `ttlMs`: shared for `RESULT_LEASE_SHARE_MS`, so they live ttlMs to ttlMs + 1 s. */
  private resultLease(ttlMs: number): Promise<string> {
    const now = Date.now();
    const current = this.resultLeases.get(ttlMs);
    if (current !== undefined && now - current.grantedAtMs < RESULT_LEASE_SHARE_MS) return current.id;
    const id = this.grant(Math.ceil((ttlMs + RESULT_LEASE_SHARE_MS) / 1000));
    const entry = { id, grantedAtMs: now };
    this.resultLeases.set(ttlMs, entry);
    id.catch(() => {
      if (this.resultLeases.get(ttlMs) === entry) this.resultLeases.delete(ttlMs);
    });
    return id;
  }
}

/**
 * A deduplication store in etcd, shared by every replica that names the same etcd and
 * prefix (see the file comment for how claims, results and waiting map to etcd).
 *
 * @throws TypeError naming the option and value when `options` is invalid, or when no
 * etcd connection is given and none is set by `register({ etcd })` or `ETCD_ENDPOINTS`.
 */
export function createEtcdIdempotencyStore(options: EtcdIdempotencyStoreOptions = {}): IdempotencyStore {
  if (options === null || typeof options !== 'object') fail('options must be an object', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) fail(`unknown option '${key}' (known: ${[...KNOWN_KEYS].join(', ')})`, (options as Record<string, unknown>)[key]);
  }
  const d = DEFAULT_ETCD_IDEMPOTENCY_STORE_OPTIONS;
  const etcd = options.etcd ?? getDefaultEtcdOptions();
  if (etcd === undefined) fail("no etcd connection: pass 'etcd', call register({ etcd }) first, or set ETCD_ENDPOINTS", etcd);
  const prefix = options.prefix ?? d.prefix;
  if (typeof prefix !== 'string' || prefix.length === 0) fail('prefix must be a non-empty string', prefix);
  const claimTtlSeconds = options.claimTtlSeconds ?? d.claimTtlSeconds;
  if (!Number.isInteger(claimTtlSeconds) || claimTtlSeconds < 1) fail('claimTtlSeconds must be an integer ≥ 1', claimTtlSeconds);
  const operationTimeoutMs = options.operationTimeoutMs ?? d.operationTimeoutMs;
  if (typeof operationTimeoutMs !== 'number' || !Number.isFinite(operationTimeoutMs) || operationTimeoutMs <= 0) {
    fail('operationTimeoutMs must be a finite number > 0', operationTimeoutMs);
  }
  return new EtcdIdempotencyStore(validateEtcdOptions(etcd, COMPONENT), prefix, claimTtlSeconds, operationTimeoutMs);
}
