/**
 * One priority tier's endpoints in hash order: sorted by XXH64(address, seed),
 * ties by address. Kept sorted across updates by binary insertion and removal,
 * so a join or leave costs O(log n) comparisons (plus the array move), never a
 * re-sort; the hash of an address is computed once.
 *
 * Both subsetting modes read it: A68 random subsetting takes the first k under a
 * per-client random seed; the deterministic aperture walks it as the destination
 * ring under a seed every client shares (0), so all clients agree on the order.
 * Hash order, not address order, keeps a slice from being a run of neighbouring
 * addresses (replicas on one host, on consecutive ports).
 */
import { xxhash64 } from './xxhash64';

interface RingEntry<T> {
  readonly rank: number;
  readonly address: string;
  item: T;
}

export class SubsetRing<T> {
  private readonly entries: RingEntry<T>[] = [];
  private readonly byAddress = new Map<string, RingEntry<T>>();

  constructor(private readonly seed: bigint) {}

  get size(): number {
    return this.entries.length;
  }

  /** The item at position `i` of the hash order. */
  at(i: number): T {
    return this.entries[i].item;
  }

  get(address: string): T | undefined {
    return this.byAddress.get(address)?.item;
  }

  /** Inserts `address`, or replaces its item in place (the position depends only on the address). */
  set(address: string, item: T): void {
    const existing = this.byAddress.get(address);
    if (existing) {
      existing.item = item;
      return;
    }
    // The top 53 bits: exact in a double, so comparisons stay plain numbers.
    const entry: RingEntry<T> = { rank: Number(xxhash64(address, this.seed) >> 11n), address, item };
    this.entries.splice(this.position(entry.rank, address), 0, entry);
    this.byAddress.set(address, entry);
  }

  delete(address: string): boolean {
    const entry = this.byAddress.get(address);
    if (!entry) return false;
    this.byAddress.delete(address);
    this.entries.splice(this.position(entry.rank, address), 1);
    return true;
  }

  /** First index whose (rank, address) is not below the given one. */
  private position(rank: number, address: string): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.entries[mid];
      if (e.rank < rank || (e.rank === rank && e.address < address)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
