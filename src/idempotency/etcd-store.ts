/**
 * `createEtcdIdempotencyStore()`: the deduplication store the replicas share. A claim is
 * a create-if-absent transaction under the process's short lease (a dead replica's claims
 * lapse); the result replaces it only while it is still ours (same mod revision), under a
 * result lease shared per second; a waiter watches, then reads (missing no change after
 * its claim). Every operation has a timeout: an unreachable etcd makes it reject, never
 * hang. Layout: docs/idempotency.md.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { acquireEtcdClient, getDefaultEtcdOptions, validateEtcdOptions, type EtcdClientLease, type EtcdOptions } from '../backends/etcd/connection';
import { decodeStoredValue, encodeClaim, encodeResult } from './etcd-store-codec';
import { IdempotencyLeases, withTimeout } from './etcd-store-leases';
import { type IdempotencyClaim, type IdempotencyClaimOutcome, type IdempotencyResult, type IdempotencyStore } from './idempotency-store';

const COMPONENT = 'grpc-etcd-lb idempotency store';

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

class EtcdIdempotencyStore implements IdempotencyStore {
  private readonly connection: EtcdClientLease;
  private readonly client: Etcd3;
  private readonly owner = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly leases: IdempotencyLeases;
  private readonly watchers = new Set<Watcher>();
  private closed = false;

  constructor(
    etcd: EtcdOptions,
    private readonly prefix: string,
    claimTtlSeconds: number,
    private readonly timeoutMs: number,
  ) {
    this.connection = acquireEtcdClient(etcd, 'idempotency');
    this.client = this.connection.client;
    this.leases = new IdempotencyLeases(this.client, claimTtlSeconds, timeoutMs);
  }

  async claim(key: string, requestHash: string): Promise<IdempotencyClaimOutcome> {
    const leaseId = await this.leases.claimLease();
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
    const leaseId = await this.leases.resultLease(ttlMs);
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
    for (const watcher of this.watchers) await watcher.cancel().catch(() => undefined);
    this.watchers.clear();
    await this.leases.close();
    this.connection.release();
  }

  private callOptions(): { deadline: Date } {
    return { deadline: new Date(Date.now() + this.timeoutMs) };
  }
}

/**
 * A deduplication store in etcd, shared by every replica that names the same etcd and
 * prefix (how claims, results and waiting map to etcd: docs/idempotency.md).
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
