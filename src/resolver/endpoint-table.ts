/**
 * The endpoints of one service as last seen in etcd: every key under the
 * service prefix, decoded once per change, and the list the LB policy gets.
 * Bad values are kept out of the list (one warning per bad put), two keys
 * with the same address resolve to the first key in key order (one warning),
 * and the order is key order, so the same set always gives the same list.
 */
import { decodeEndpoint, type EndpointRecord } from '../etcd/endpoint-codec';
import { type EndpointAttributes } from '../balancer/endpoint-attributes';
import { type Endpoint } from '../grpc-experimental';

/** One key/value as read from etcd. */
export interface EtcdKeyValue {
  readonly key: string;
  readonly value: Buffer | string;
  /** etcd's mod_revision: the same key at the same revision is the same value. */
  readonly modRevision: string;
}

/** What the LB policy gets: the endpoint list and per-address attributes. */
export interface ResolvedEndpoints {
  /** In key order, one per distinct address. */
  readonly endpoints: readonly Endpoint[];
  /** Keyed by `host:port` / `[v6]:port`. */
  readonly attributes: ReadonlyMap<string, EndpointAttributes>;
}

type Entry =
  | { readonly ok: true; readonly modRevision: string; readonly record: EndpointRecord; readonly endpoint: Endpoint; readonly attributes: EndpointAttributes }
  | { readonly ok: false; readonly modRevision: string };

export class EndpointTable {
  private entries = new Map<string, Entry>();
  private sortedKeys: string[] | undefined = [];
  /** Keys that lost an address to an earlier key and were warned about. */
  private readonly warnedDuplicates = new Set<string>();

  /** `warn` receives one line per problem; rate-limit it there. */
  constructor(private readonly service: string, private readonly warn: (text: string) => void) {}

  /** Number of keys under the prefix (good and bad). */
  get keyCount(): number {
    return this.entries.size;
  }

  /**
   * Replaces everything with a full listing; returns whether anything changed.
   * Keys unchanged since the last listing (same mod_revision) are neither
   * decoded nor warned about again.
   */
  replaceAll(kvs: Iterable<EtcdKeyValue>): boolean {
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
    if (changed) this.sortedKeys = undefined;
    return changed;
  }

  /** Applies a put event; returns whether anything changed. */
  put(kv: EtcdKeyValue): boolean {
    const old = this.entries.get(kv.key);
    if (old && old.modRevision === kv.modRevision) return false;
    const entry = this.decode(kv);
    if (!old) this.insertSorted(kv.key);
    else if (!old.ok || !entry.ok || old.record.address !== entry.record.address) this.warnedDuplicates.delete(kv.key);
    this.entries.set(kv.key, entry);
    return true;
  }

  /** Applies a delete event; returns whether anything changed. */
  delete(key: string): boolean {
    if (!this.entries.delete(key)) return false;
    this.removeSorted(key);
    this.warnedDuplicates.delete(key);
    return true;
  }

  /** Where `key` is or would go in `sortedKeys` (binary search, the order of `Array.prototype.sort`). */
  private sortedIndex(keys: readonly string[], key: string): number {
    let low = 0;
    let high = keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (keys[middle] < key) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** A watch event adds one key: O(log n) to find its place (and a memmove), not a re-sort. */
  private insertSorted(key: string): void {
    if (!this.sortedKeys) return;
    this.sortedKeys.splice(this.sortedIndex(this.sortedKeys, key), 0, key);
  }

  private removeSorted(key: string): void {
    if (!this.sortedKeys) return;
    const i = this.sortedIndex(this.sortedKeys, key);
    if (this.sortedKeys[i] === key) this.sortedKeys.splice(i, 1);
  }

  /** Builds the list for the LB policy: O(n), with no decoding (each value was decoded once, when it changed). */
  resolve(): ResolvedEndpoints {
    if (!this.sortedKeys) this.sortedKeys = [...this.entries.keys()].sort();
    const endpoints: Endpoint[] = [];
    const attributes = new Map<string, EndpointAttributes>();
    const winners = new Map<string, string>();
    for (const key of this.sortedKeys) {
      const entry = this.entries.get(key);
      if (!entry || !entry.ok) continue;
      const address = entry.record.address;
      const winner = winners.get(address);
      if (winner !== undefined) {
        if (!this.warnedDuplicates.has(key)) {
          this.warnedDuplicates.add(key);
          this.warn(`service '${this.service}': key '${key}' has address ${address} already registered by key '${winner}'; using '${winner}'`);
        }
        continue;
      }
      winners.set(address, key);
      endpoints.push(entry.endpoint);
      attributes.set(address, entry.attributes);
    }
    return { endpoints, attributes };
  }

  private decode(kv: EtcdKeyValue): Entry {
    const result = decodeEndpoint(kv.key, kv.value);
    if (!result.ok) {
      this.warn(`service '${this.service}': skipping ${result.error.message}`);
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
