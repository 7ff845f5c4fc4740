/**
 * Deterministic subsetting: Finagle's deterministic aperture, computed exactly
 * in integers (why this and not Google SRE's subsets: docs/client-registry-and-zones.md).
 * The ring is N·C units long (N backends, C clients): backend j covers
 * [j·C, (j+1)·C), client i's slice [i·N, i·N + L) with L = max(N, k·C). A backend
 * partly inside the slice gets that fraction as its weight, so every point of
 * the ring carries the same load whatever C, N and k; no float rounding decides
 * membership.
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
