/**
 * The ring of `etcd_ring_hash`: Ketama-style points per endpoint, sized and
 * filled as gRFC A42 (grpc-go's `ring.go`) does, with one change
 * that keeps keys in place when the set changes (see `pointCounts`).
 *
 * - scale = min(P / minShare, maxRingSize), minShare being the smallest
 *   weight / Σweight and P = ⌈minShare × minRingSize⌉ rounded up to a power of
 *   two (see `pointCounts` for why); endpoint i gets points up to the running
 *   total scale × Σ_{j ≤ i} share(j);
 * - point k of an endpoint is XXH64(`<address>_<k>`), seed 0;
 * - sorted by hash; a key goes to the first point at or after its hash (wrapping).
 *
 * Hashes are kept as their top 53 bits (exact in a double), so the ring is a
 * `Float64Array` searched without BigInt. Built once per endpoint-set change:
 * O(R log R) for R points; a lookup reads a radix index over the hashes
 * (`ringLookup`, O(1) expected; `lowerBound` is the plain binary search).
 */
import { xxhash64 } from '../subset/xxhash64';

/** gRFC A42's defaults (and its bounds). */
export const DEFAULT_MIN_RING_SIZE = 1024;
export const DEFAULT_MAX_RING_SIZE = 8_388_608;

/** An endpoint as the ring places it. */
export interface RingMember {
  /** Its address, `host:port`: what its points hash. */
  readonly address: string;
  /** > 0. */
  readonly weight: number;
}

/** A built ring: point i has hash `hashes[i]` (ascending) and belongs to `members[owners[i]]`. */
export interface HashRing {
  readonly hashes: Float64Array;
  /** Index of each point's member in the list the ring was built from. */
  readonly owners: Int32Array;
  /** Index of the next point clockwise whose owner differs (itself when there is one owner): a walk skips runs. */
  readonly nextOwnerChange: Int32Array;
  /**
   * Radix index: `bucketStart[b]` is the first point whose hash has top bits ≥ b (b of
   * `bucketBits` bits; one entry past the end). A lookup reads its bucket and scans
   * about one point, instead of a branchy binary search over the whole ring.
   */
  readonly bucketStart: Int32Array;
  /** The hash range of one bucket: 2^(53 − bits). */
  readonly bucketWidth: number;
}

/** The top 53 bits of XXH64(`text`): the ring's hash space. */
export function ringHash(text: string): number {
  return Number(xxhash64(text) >> 11n);
}

/**
 * Number of points per member. gRFC A42 gives the lightest member
 * ⌈minShare × minRingSize⌉ points and the others in proportion; we round that
 * up to a power of two, so that adding or removing an endpoint leaves every
 * other endpoint's points as they were (with A42's exact figure, 10 → 9 equal
 * endpoints gives each 114 points instead of 103, and the new points take
 * about 10 % of all keys from endpoints that stayed). The ring then has
 * between minRingSize and 2 × minRingSize points (capped at maxRingSize, as
 * A42 caps it). Exported for tests.
 */
export function pointCounts(weights: readonly number[], minRingSize: number, maxRingSize: number): number[] {
  let total = 0;
  for (const w of weights) total += w;
  if (weights.length === 0 || !(total > 0)) return weights.map(() => 0);
  let minShare = Infinity;
  for (const w of weights) minShare = Math.min(minShare, w / total);
  const lightest = 2 ** Math.ceil(Math.log2(Math.ceil(minShare * minRingSize)));
  const scale = Math.min(lightest / minShare, maxRingSize);
  const counts: number[] = [];
  let target = 0;
  let placed = 0;
  for (const w of weights) {
    target += scale * (w / total);
    // Rounding the running target (not each share) keeps the total at ⌈scale⌉ and equal weights exactly equal.
    const upTo = Math.round(target);
    counts.push(upTo - placed);
    placed = upTo;
  }
  return counts;
}

/**
 * The point hashes of each address, kept across rebuilds (XXH64 over BigInt costs
 * microseconds a point; a set change then costs the sort, not the hashing). Entries
 * not used by a build are dropped after it.
 */
export class PointHashCache {
  private entries = new Map<string, Float64Array>();
  private next = new Map<string, Float64Array>();

  /** The first `count` point hashes of `address`. */
  hashes(address: string, count: number): Float64Array {
    let hashes = this.entries.get(address) ?? this.next.get(address);
    if (hashes === undefined || hashes.length < count) {
      const grown = new Float64Array(count);
      const known = hashes?.length ?? 0;
      if (hashes !== undefined) grown.set(hashes);
      for (let k = known; k < count; k++) grown[k] = ringHash(`${address}_${k}`);
      hashes = grown;
    }
    this.next.set(address, hashes);
    return hashes;
  }

  /** Ends a build: only the addresses it used stay. */
  endBuild(): void {
    this.entries = this.next;
    this.next = new Map();
  }
}

/** Builds the ring of `members` (in this order: callers sort them by address so every client builds the same ring). */
export function buildRing(members: readonly RingMember[], minRingSize = DEFAULT_MIN_RING_SIZE, maxRingSize = DEFAULT_MAX_RING_SIZE, cache = new PointHashCache()): HashRing {
  const counts = pointCounts(members.map(m => m.weight), minRingSize, maxRingSize);
  let size = 0;
  for (const n of counts) size += n;
  const hashes = new Float64Array(size);
  // Owner by hash: a native numeric sort of the hashes, then one lookup each (two points with
  // the same 53-bit hash, about 1 in 10^8 rings of 10,000 points, both go to the later member).
  const ownerOf = new Map<number, number>();
  let p = 0;
  members.forEach((member, owner) => {
    const points = cache.hashes(member.address, counts[owner]);
    for (let k = 0; k < counts[owner]; k++) {
      hashes[p++] = points[k];
      ownerOf.set(points[k], owner);
    }
  });
  cache.endBuild();
  hashes.sort();
  const owners = new Int32Array(size);
  for (let i = 0; i < size; i++) owners[i] = ownerOf.get(hashes[i])!;
  const bucketBits = Math.min(24, Math.max(1, Math.ceil(Math.log2(Math.max(size, 1))) + 1));
  const bucketWidth = 2 ** (53 - bucketBits);
  return { hashes, owners, nextOwnerChange: ownerChanges(owners), bucketStart: bucketIndex(hashes, bucketBits, bucketWidth), bucketWidth };
}

function bucketIndex(hashes: Float64Array, bits: number, width: number): Int32Array {
  const buckets = 2 ** bits;
  const start = new Int32Array(buckets + 1);
  let p = 0;
  for (let b = 0; b <= buckets; b++) {
    while (p < hashes.length && hashes[p] < b * width) p++;
    start[b] = p;
  }
  return start;
}

/** `lowerBound` through the ring's radix index: O(1) expected (the points of one bucket, about one). */
export function ringLookup(ring: HashRing, hash: number): number {
  const hashes = ring.hashes;
  const bucket = Math.floor(hash / ring.bucketWidth);
  let p = ring.bucketStart[bucket];
  const end = ring.bucketStart[bucket + 1];
  while (p < end && hashes[p] < hash) p++;
  return p === hashes.length ? 0 : p;
}

/** For each point, the next point clockwise with another owner (O(R): one pass backwards, twice round). */
function ownerChanges(owners: Int32Array): Int32Array {
  const size = owners.length;
  const next = new Int32Array(size);
  if (size === 0) return next;
  let change = -1;
  for (let pass = 0; pass < 2; pass++) {
    for (let i = size - 1; i >= 0; i--) {
      const after = (i + 1) % size;
      if (owners[after] !== owners[i]) change = after;
      next[i] = change;
    }
  }
  for (let i = 0; i < size; i++) if (next[i] < 0) next[i] = i;
  return next;
}

/** Index of the first point whose hash is ≥ `hash`, wrapping to 0 (the ring must not be empty). */
export function lowerBound(hashes: Float64Array, hash: number): number {
  let lo = 0;
  let hi = hashes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (hashes[mid] < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo === hashes.length ? 0 : lo;
}
