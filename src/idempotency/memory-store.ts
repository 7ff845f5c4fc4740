/**
 * `createMemoryIdempotencyStore()`: the deduplication store of one process (one replica,
 * tests). Claims and results live in a Map; results expire `ttlMs` after they are recorded.
 */
import { type IdempotencyClaim, type IdempotencyClaimOutcome, type IdempotencyResult, type IdempotencyStore } from './idempotency-store';

/** Expired results are swept at most this often (they are also ignored when read). */
const SWEEP_INTERVAL_MS = 30_000;

type Entry =
  | { state: 'running'; requestHash: string; token: string; waiters: Set<() => void> }
  | { state: 'done'; result: IdempotencyResult; expiresAtMs: number };

class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private nextToken = 0;
  private sweepTimer: NodeJS.Timeout | undefined;

  claim(key: string, requestHash: string): Promise<IdempotencyClaimOutcome> {
    const entry = this.live(key);
    if (entry?.state === 'running') return Promise.resolve({ state: 'running', requestHash: entry.requestHash });
    if (entry?.state === 'done') return Promise.resolve({ state: 'done', result: entry.result });
    const token = String(++this.nextToken);
    this.entries.set(key, { state: 'running', requestHash, token, waiters: new Set() });
    return Promise.resolve({ state: 'claimed', claim: { key, requestHash, token } });
  }

  complete(claim: IdempotencyClaim, result: IdempotencyResult, ttlMs: number): Promise<void> {
    const entry = this.ownedBy(claim);
    if (entry !== undefined) {
      this.entries.set(claim.key, { state: 'done', result, expiresAtMs: Date.now() + ttlMs });
      this.armSweep();
      for (const wake of entry.waiters) wake();
    }
    return Promise.resolve();
  }

  release(claim: IdempotencyClaim): Promise<void> {
    const entry = this.ownedBy(claim);
    if (entry !== undefined) {
      this.entries.delete(claim.key);
      for (const wake of entry.waiters) wake();
    }
    return Promise.resolve();
  }

  wait(key: string, signal: AbortSignal): Promise<IdempotencyResult | undefined> {
    const entry = this.live(key);
    if (entry?.state !== 'running' || signal.aborted) return Promise.resolve(entry?.state === 'done' ? entry.result : undefined);
    return new Promise(resolve => {
      const wake = (): void => {
        entry.waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        const now = this.live(key);
        resolve(now?.state === 'done' ? now.result : undefined);
      };
      entry.waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    return Promise.resolve();
  }

  /** The entry of `key`, an expired result counting as absent. */
  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry?.state === 'done' && entry.expiresAtMs <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private ownedBy(claim: IdempotencyClaim): Extract<Entry, { state: 'running' }> | undefined {
    const entry = this.entries.get(claim.key);
    return entry?.state === 'running' && entry.token === claim.token ? entry : undefined;
  }

  private armSweep(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => {
      for (const key of [...this.entries.keys()]) this.live(key);
    }, SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }
}

/**
 * A deduplication store in this process's memory: for a single replica and for tests.
 * Nothing is shared between processes and a restart forgets every key; use
 * `createEtcdIdempotencyStore` when retries may reach another replica.
 */
export function createMemoryIdempotencyStore(): IdempotencyStore {
  return new MemoryIdempotencyStore();
}
