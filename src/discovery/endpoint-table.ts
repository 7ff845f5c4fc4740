/**
 * One service's endpoints as last seen in its registry, and the list the LB policy
 * gets. Bad values are left out and a duplicate address goes to the first key (one
 * warning each); the list is in key order, so one set always gives one list.
 * `resolve()` patches only the addresses that changed: unchanged endpoints keep
 * their objects, which is how the LB policy skips them.
 */
import { type EndpointDecoder, type EndpointRecord } from './endpoint-record';
import { type EndpointAttributes } from './endpoint-attributes';
import { type Endpoint } from '../common/grpc-experimental';

/** One key/value as read from a registry (an etcd key, a ZooKeeper child node). */
export interface DiscoveryKeyValue {
  readonly key: string;
  readonly value: Buffer | string;
  /** Same key, same version: same value, not decoded again (etcd mod_revision, ZooKeeper mzxid). */
  readonly modRevision: string;
}

/** What the LB policy gets: the endpoint list and per-address attributes. */
export interface ResolvedEndpoints {
  /** In key order, one per distinct address. A snapshot: later changes do not touch it. */
  readonly endpoints: readonly Endpoint[];
  /** By `host:port`. The table's own map, patched in place by the next `resolve()` (cheaper than a copy): do not keep it. */
  readonly attributes: ReadonlyMap<string, EndpointAttributes>;
}

type Entry =
  | { readonly ok: true; readonly modRevision: string; readonly record: EndpointRecord; readonly endpoint: Endpoint; readonly attributes: EndpointAttributes }
  | { readonly ok: false; readonly modRevision: string };

/** Where `key` is or would go in sorted `keys` (the order of `Array.prototype.sort`). */
export function sortedIndex(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle] < key) low = middle + 1;
    else high = middle;
  }
  return low;
}

export class EndpointTable {
  private entries = new Map<string, Entry>();
  /** Every key, sorted, for full rebuilds; kept sorted in place by watch events. */
  private sortedKeys: string[] | undefined = [];
  /** The good keys of each address (usually one). */
  private readonly keysByAddress = new Map<string, Set<string>>();
  /** Keys that lost an address to an earlier key and were warned about. */
  private readonly warnedDuplicates = new Set<string>();
  private resolvedKeys: string[] = [];
  private resolvedEndpoints: Endpoint[] = [];
  private readonly attributes = new Map<string, EndpointAttributes>();
  private readonly winners = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private rebuildAll = true;

  /** `warn` gets one line per problem (rate-limit it there); `onSkipped` is told once per bad put. */
  constructor(
    private readonly service: string,
    private readonly warn: (text: string) => void,
    private readonly onSkipped: (() => void) | undefined,
    private readonly decodeValue: EndpointDecoder,
  ) {}

  get keyCount(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Every key (good and bad), for a backend that diffs a full child listing (ZooKeeper). */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Replaces everything with a full listing; returns whether anything changed. Unchanged keys are not decoded again. */
  replaceAll(kvs: Iterable<DiscoveryKeyValue>): boolean {
    const previous = this.entries;
    this.entries = new Map();
    let reused = 0;
    for (const kv of kvs) {
      const old = previous.get(kv.key);
      if (old && old.modRevision === kv.modRevision) {
        this.entries.set(kv.key, old);
        reused++;
      } else {
        this.entries.set(kv.key, this.decode(kv));
      }
    }
    for (const key of this.warnedDuplicates) {
      if (!this.entries.has(key)) this.warnedDuplicates.delete(key);
    }
    const changed = reused !== previous.size || reused !== this.entries.size;
    if (changed) {
      this.sortedKeys = undefined;
      this.rebuildAll = true;
      this.keysByAddress.clear();
      for (const [key, entry] of this.entries) if (entry.ok) this.index(key, entry.record.address);
    }
    return changed;
  }

  /** Applies a put event; returns whether anything changed. */
  put(kv: DiscoveryKeyValue): boolean {
    const old = this.entries.get(kv.key);
    if (old && old.modRevision === kv.modRevision) return false;
    const entry = this.decode(kv);
    if (!old) this.insertSorted(kv.key);
    else if (!old.ok || !entry.ok || old.record.address !== entry.record.address) this.warnedDuplicates.delete(kv.key);
    this.entries.set(kv.key, entry);
    if (old?.ok) this.unindex(kv.key, old.record.address);
    if (entry.ok) this.index(kv.key, entry.record.address);
    return true;
  }

  /** Applies a delete event; returns whether anything changed. */
  delete(key: string): boolean {
    const old = this.entries.get(key);
    if (!old) return false;
    this.entries.delete(key);
    this.removeSorted(key);
    this.warnedDuplicates.delete(key);
    if (old.ok) this.unindex(key, old.record.address);
    return true;
  }

  /** The list for the LB policy: patched for what changed since the last call (see the file's doc). */
  resolve(): ResolvedEndpoints {
    // Many changes at once: one rebuild is cheaper than many splices.
    if (this.rebuildAll || this.dirty.size > 16 + (this.resolvedKeys.length >> 3)) this.rebuild();
    else {
      // Removals first: a key that moved address must leave its old place before it is re-inserted.
      const winners = new Map<string, string | undefined>();
      for (const address of this.dirty) {
        const keys = this.keysByAddress.get(address);
        const winner = keys === undefined ? undefined : this.winnerOf(address, keys);
        winners.set(address, winner);
        this.removeWinner(address, winner);
      }
      for (const [address, winner] of winners) this.placeWinner(address, winner);
    }
    this.dirty.clear();
    return { endpoints: this.resolvedEndpoints.slice(), attributes: this.attributes };
  }

  private index(key: string, address: string): void {
    let keys = this.keysByAddress.get(address);
    if (keys === undefined) this.keysByAddress.set(address, (keys = new Set()));
    keys.add(key);
    this.dirty.add(address);
  }

  private unindex(key: string, address: string): void {
    const keys = this.keysByAddress.get(address);
    keys?.delete(key);
    if (keys?.size === 0) this.keysByAddress.delete(address);
    this.dirty.add(address);
  }

  /** The first key in key order among `keys`, warning once for each other one. */
  private winnerOf(address: string, keys: ReadonlySet<string>): string {
    let winner: string | undefined;
    for (const key of keys) if (winner === undefined || key < winner) winner = key;
    if (keys.size > 1) {
      for (const key of keys) {
        if (key === winner || this.warnedDuplicates.has(key)) continue;
        this.warnedDuplicates.add(key);
        this.warn(`service '${this.service}': key '${key}' has address ${address} already registered by key '${winner}'; using '${winner}'`);
      }
    }
    return winner!;
  }

  /** Takes the address's previous winner out of the resolved list unless it stays the winner. */
  private removeWinner(address: string, winner: string | undefined): void {
    const previous = this.winners.get(address);
    if (previous === undefined || previous === winner) return;
    const at = sortedIndex(this.resolvedKeys, previous);
    this.resolvedKeys.splice(at, 1);
    this.resolvedEndpoints.splice(at, 1);
    this.winners.delete(address);
    this.attributes.delete(address);
  }

  private placeWinner(address: string, winner: string | undefined): void {
    if (winner === undefined) return;
    const entry = this.entries.get(winner) as Extract<Entry, { ok: true }>;
    const at = sortedIndex(this.resolvedKeys, winner);
    if (this.winners.get(address) === winner) {
      this.resolvedEndpoints[at] = entry.endpoint;
    } else {
      this.resolvedKeys.splice(at, 0, winner);
      this.resolvedEndpoints.splice(at, 0, entry.endpoint);
    }
    this.winners.set(address, winner);
    this.attributes.set(address, entry.attributes);
  }

  private rebuild(): void {
    this.rebuildAll = false;
    if (!this.sortedKeys) this.sortedKeys = [...this.entries.keys()].sort();
    this.resolvedKeys = [];
    this.resolvedEndpoints = [];
    this.attributes.clear();
    this.winners.clear();
    for (const key of this.sortedKeys) {
      const entry = this.entries.get(key);
      if (!entry || !entry.ok) continue;
      const address = entry.record.address;
      if (this.winners.has(address)) continue;
      this.winnerOf(address, this.keysByAddress.get(address)!);
      this.winners.set(address, key);
      this.resolvedKeys.push(key);
      this.resolvedEndpoints.push(entry.endpoint);
      this.attributes.set(address, entry.attributes);
    }
  }

  /** A watch event adds one key in place, not a re-sort. */
  private insertSorted(key: string): void {
    if (!this.sortedKeys) return;
    this.sortedKeys.splice(sortedIndex(this.sortedKeys, key), 0, key);
  }

  private removeSorted(key: string): void {
    if (!this.sortedKeys) return;
    const i = sortedIndex(this.sortedKeys, key);
    if (this.sortedKeys[i] === key) this.sortedKeys.splice(i, 1);
  }

  private decode(kv: DiscoveryKeyValue): Entry {
    const result = this.decodeValue(kv.key, kv.value);
    if (!result.ok) {
      if (result.quiet) return { ok: false, modRevision: kv.modRevision };
      this.warn(`service '${this.service}': skipping ${result.error.message}`);
      this.onSkipped?.();
      return { ok: false, modRevision: kv.modRevision };
    }
    const record = result.endpoint;
    return {
      ok: true,
      modRevision: kv.modRevision,
      record,
      endpoint: { addresses: [{ host: record.hostPort.host, port: record.hostPort.port }] },
      attributes: Object.freeze({ weight: record.weight, priority: record.priority, metadata: Object.freeze(record.metadata) }),
    };
  }
}
