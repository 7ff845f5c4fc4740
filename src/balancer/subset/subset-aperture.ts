/**
 * Deterministic subsetting: Finagle's deterministic aperture (twitter/finagle,
 * `DeterministicAperture.rst`), computed exactly in integers.
 *
 * Clients sit on a peer ring at offsets i/C, backends on a destination ring, each
 * 1/N wide, in one order all clients agree on (see subset-ring.ts). Client i's
 * slice starts at i/C and is max(1/C, k/N) wide: k backends' worth, or more when
 * there are too few clients to cover every backend. A backend only partly inside
 * the slice gets that fraction as a weight, so every point of the ring carries the
 * same load whatever C, N and k are (no divisibility needed).
 *
 * Why this scheme and not Google SRE's deterministic subsets (shuffle per round,
 * take slice `id % (N/k)`): both need the client's index and the client count,
 * which the client registry gives; but SRE's subsets change wholesale when a
 * client's index moves (its round and slice change: every client ranked after a
 * newcomer gets k new backends) or when N changes (a new shuffle), while an
 * aperture slice only slides: a join or leave moves each slice edge by at most
 * one backend. And it evens the load exactly for any N, not only when k divides N.
 * The price: edge backends carry fractional weights, handed to the child policy
 * in a derived attribute map (subset-balancer.ts).
 *
 * Units: the ring is N·C units long, backend j covers [j·C, (j+1)·C), client i's
 * slice [i·N, i·N + L) with L = max(N, k·C). Everything is an integer: no float
 * rounding decides which backend is in a slice.
 */

/** One backend of a client's slice: its position in the ring order and the share of it the slice covers, in (0, 1]. */
export interface ApertureMember {
  readonly index: number;
  readonly fraction: number;
}

/**
 * Client `clientIndex` of `clientCount`'s slice over `backendCount` backends with
 * aperture `apertureSize` (k): the backends it connects to, in ring order from its
 * offset, with their fractions. All backends (fraction 1) when k ≥ N.
 */
export function apertureSlice(clientIndex: number, clientCount: number, backendCount: number, apertureSize: number): ApertureMember[] {
  const n = backendCount;
  const c = clientCount;
  if (n <= 0) return [];
  if (apertureSize >= n || c <= 0 || clientIndex < 0 || clientIndex >= c) {
    // Every backend; also the safe answer to an index the view cannot have (never a partial ring).
    return Array.from({ length: n }, (_v, index) => ({ index, fraction: 1 }));
  }
  const length = Math.max(n, apertureSize * c);
  if (length >= n * c) return Array.from({ length: n }, (_v, index) => ({ index, fraction: 1 }));
  const start = clientIndex * n;
  const end = start + length;
  const first = Math.floor(start / c);
  const last = Math.floor((end - 1) / c);
  const members: ApertureMember[] = [];
  for (let j = first; j <= last; j++) {
    const covered = Math.min(end, (j + 1) * c) - Math.max(start, j * c);
    members.push({ index: j % n, fraction: covered / c });
  }
  return members;
}

/**
 * How many clients a backend is expected to serve under the aperture: (L + C) / N
 * backends' worth of slice starts can touch it (its own width plus a slice's
 * length). Each backend's real count is within ±1 of this.
 */
export function expectedApertureConnections(clientCount: number, backendCount: number, apertureSize: number): number {
  const n = backendCount;
  const c = clientCount;
  if (apertureSize >= n) return c;
  const length = Math.max(n, apertureSize * c);
  if (length >= n * c) return c;
  return (length + c) / n;
}
