/**
 * One tier's scheduler for `etcd_ring_hash`: the tier's endpoints on a hash ring
 * (hash-ring.ts) and, with `loadBound` c, bounded loads (Mirrokni, Thorup,
 * Zadimoghaddam): endpoint i may hold ⌈c × (m + 1) × wᵢ / W⌉ calls in flight, m
 * the tier's calls in flight. The key's owner takes the call within its
 * capacity, else the walk goes clockwise; a retry's `excluded` are skipped too.
 * The ring uses configured weights, the capacities effective ones (slow start
 * scales the share, not the place). The ring is rebuilt at the first pick after
 * a change; m is O(1) per call, recounted exactly every max(64, n) picks because
 * grpc-js has no hook for a pick whose call never starts.
 */
import { type Metadata, type status } from '@grpc/grpc-js';
import { type CallHooks, type SchedulableEndpoint, type TierScheduler } from '../schedulers/pick-strategy';
import * as hashRing from './hash-ring';
import { buildRing, PointHashCache, ringHash, type HashRing } from './hash-ring';

/** Read once: under tsx (the bench, the tests) every use of an imported binding is a module getter call. */
const ringLookup = hashRing.ringLookup;

/** What the scheduler reads of an endpoint besides its load (a `TierMember` has both). */
interface RingEndpoint extends SchedulableEndpoint {
  readonly addresses?: readonly string[];
  /** The configured weight (0 = draining). */
  readonly weight?: number;
}

export interface RingHashSchedulerOptions {
  /** The call-metadata key whose value is hashed. */
  readonly hashHeader: string;
  readonly minRingSize: number;
  readonly maxRingSize: number;
  /** c ≥ 1 of the bound; undefined = no bound. */
  readonly loadBound: number | undefined;
  /** [0, 1): the point of a call without the header. */
  readonly random: () => number;
}

const MAX_CACHED_KEYS = 10_000;
/** Hashes of recent keys (XXH64 over BigInt costs microseconds; keys repeat). Cleared when full. */
const keyHashes = new Map<string, number>();

/** The ring hash of a call key (cached). */
export function keyHash(key: string): number {
  let hash = keyHashes.get(key);
  if (hash === undefined) {
    if (keyHashes.size >= MAX_CACHED_KEYS) keyHashes.clear();
    hash = ringHash(key);
    keyHashes.set(key, hash);
  }
  return hash;
}

/** The key of a call: its `header` values joined by ',' (as grpc-go joins them); undefined when it has none. */
export function callKey(metadata: Metadata, header: string): string | undefined {
  const values = metadata.get(header);
  if (values.length === 0) return undefined;
  if (values.length === 1) return String(values[0]);
  return values.map(String).join(',');
}

export class RingHashScheduler implements TierScheduler {
  private readonly endpoints: RingEndpoint[] = [];
  /** Effective weight of each slot (the bound's share). */
  private weights: number[] = [];
  /** Configured weight of each slot when the ring was built. */
  private ringWeights: number[] = [];
  private ring: HashRing | undefined;
  /** Each recent key's point on the current ring (one Map read per pick instead of hash + lookup); cleared with the ring. */
  private readonly points = new Map<string, number>();
  private readonly pointHashes = new PointHashCache();
  private totalWeight = 0;
  /** m: calls in flight in the tier (see above). */
  private inFlight = 0;
  private picksSinceRecount = Infinity;
  /** Per slot: the `onCallEnded` grpc-js gets, which also counts m down. */
  private enders: Array<((code: status) => void) | undefined> = [];
  private endedOf: Array<((code: status) => void) | undefined> = [];
  /** Reused for every `observeCall` (read at once by the picker). */
  private readonly hooks: { onCallStarted: () => void; onCallEnded: (code: status) => void } = { onCallStarted: () => {}, onCallEnded: () => {} };

  constructor(private readonly options: RingHashSchedulerOptions) {}

  add(endpoint: SchedulableEndpoint, weight: number): void {
    this.endpoints.push(endpoint);
    this.weights.push(weight);
    this.enders.push(undefined);
    this.endedOf.push(undefined);
    this.totalWeight += weight;
    this.ring = undefined;
  }

  remove(index: number): void {
    const last = this.endpoints.length - 1;
    this.totalWeight -= this.weights[index];
    this.endpoints[index] = this.endpoints[last];
    this.weights[index] = this.weights[last];
    this.enders[index] = this.enders[last];
    this.endedOf[index] = this.endedOf[last];
    this.endpoints.pop();
    this.weights.pop();
    this.enders.pop();
    this.endedOf.pop();
    this.ring = undefined;
    this.picksSinceRecount = Infinity;
  }

  setWeight(index: number, weight: number): void {
    this.totalWeight += weight - this.weights[index];
    this.weights[index] = weight;
    if (this.ring !== undefined && ringWeightOf(this.endpoints[index], weight) !== this.ringWeights[index]) this.ring = undefined;
  }

  pick(excluded: Uint8Array | undefined, nowMs: number, metadata?: Metadata): number {
    const ring = this.ring ?? this.build();
    const size = ring.hashes.length;
    if (size === 0) return 0;
    const key = metadata === undefined ? undefined : callKey(metadata, this.options.hashHeader);
    const start = key === undefined ? Math.floor(this.options.random() * size) : this.pointOf(ring, key);
    const owner = ring.owners[start];
    const bound = this.options.loadBound;
    if (excluded === undefined && bound === undefined) return owner;
    const inFlight = bound === undefined ? 0 : this.totalInFlight(nowMs);
    // Each step jumps over a run of one owner's points: one lap (at most `size` steps) visits every owner.
    let point = start;
    for (let step = 0; step < size; step++) {
      const candidate = ring.owners[point];
      if ((excluded === undefined || excluded[candidate] === 0) && (bound === undefined || this.fits(candidate, bound, inFlight, nowMs))) return candidate;
      const next = ring.nextOwnerChange[point];
      if (next === point) break;
      point = next;
    }
    // Everything excluded or full (rounding): the key's owner, or the first endpoint not excluded.
    if (excluded === undefined || excluded[owner] === 0) return owner;
    for (let i = 0; i < this.endpoints.length; i++) if (excluded[i] === 0) return i;
    return owner;
  }

  /** The key's point on `ring` (the current one). */
  private pointOf(ring: HashRing, key: string): number {
    let point = this.points.get(key);
    if (point === undefined) {
      if (this.points.size >= MAX_CACHED_KEYS) this.points.clear();
      point = ringLookup(ring, keyHash(key));
      this.points.set(key, point);
    }
    return point;
  }

  /** The ring as last built (tests, diagnostics). */
  ringOf(): HashRing {
    return this.ring ?? this.build();
  }

  /** Whether endpoint `i` stays within ⌈c × (m + 1) × wᵢ / W⌉ with the new call. */
  private fits(i: number, bound: number, inFlight: number, nowMs: number): boolean {
    const capacity = Math.ceil((bound * (inFlight + 1) * this.weights[i]) / this.totalWeight);
    return this.endpoints[i].load.outstanding(nowMs) + 1 <= capacity;
  }

  /** m, recounted exactly every max(64, n) picks. */
  private totalInFlight(nowMs: number): number {
    if (++this.picksSinceRecount >= Math.max(64, this.endpoints.length)) {
      let total = 0;
      for (const endpoint of this.endpoints) total += endpoint.load.outstanding(nowMs);
      this.inFlight = total;
      this.picksSinceRecount = 0;
    }
    return Math.max(0, this.inFlight);
  }

  /** A call picked on slot `index` completed its pick: m counts it until it ends. */
  observeCall(index: number, started: () => void, ended: (code: status) => void): CallHooks {
    this.inFlight++;
    let ender = this.enders[index];
    if (ender === undefined || this.endedOf[index] !== ended) {
      ender = code => {
        this.inFlight--;
        ended(code);
      };
      this.enders[index] = ender;
      this.endedOf[index] = ended;
    }
    this.hooks.onCallStarted = started;
    this.hooks.onCallEnded = ender;
    return this.hooks;
  }

  private build(): HashRing {
    const order = this.endpoints.map((_, i) => i);
    const addresses = this.endpoints.map((e, i) => e.addresses?.[0] ?? e.key ?? String(i));
    order.sort((a, b) => (addresses[a] < addresses[b] ? -1 : addresses[a] > addresses[b] ? 1 : 0));
    this.ringWeights = this.endpoints.map((e, i) => ringWeightOf(e, this.weights[i]));
    const sorted = buildRing(order.map(i => ({ address: addresses[i], weight: this.ringWeights[i] })), this.options.minRingSize, this.options.maxRingSize, this.pointHashes);
    // Owners index the sorted list: map them back to tier slots.
    const owners = sorted.owners;
    for (let p = 0; p < owners.length; p++) owners[p] = order[owners[p]];
    this.ring = sorted;
    this.points.clear();
    return sorted;
  }
}

/** The weight that places an endpoint on the ring: its configured one (slow start does not move keys). */
function ringWeightOf(endpoint: RingEndpoint, effectiveWeight: number): number {
  const configured = endpoint.weight;
  return configured !== undefined && configured > 0 ? configured : effectiveWeight;
}
