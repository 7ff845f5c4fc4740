/**
 * The deterministic aperture's arithmetic (subset-aperture.ts), exhaustively over
 * many fleet shapes: connections per backend within ±1 of the expected count, load
 * per backend even, and how many connections a join or leave changes.
 */
import { expect } from 'chai';
import { apertureSlice, expectedApertureConnections } from '../../../src/balancer/subset/subset-aperture';

/** Every client's slice: backend ring positions with fractions. */
function fleet(c: number, n: number, k: number): Map<number, number>[] {
  return Array.from({ length: c }, (_v, i) => new Map(apertureSlice(i, c, n, k).map(m => [m.index, m.fraction])));
}

const SHAPES: [number, number, number][] = [];
for (const c of [1, 2, 3, 5, 6, 7, 10, 13, 30, 64, 100, 300, 1000]) {
  for (const n of [1, 2, 3, 6, 7, 10, 11, 30, 97, 300]) {
    for (const k of [1, 2, 3, 5, 10, 12]) SHAPES.push([c, n, k]);
  }
}

describe('subset: deterministic aperture math', () => {
  it('6 clients × 6 backends, k = 2: each client 2 whole backends, each backend exactly 2 clients', () => {
    const slices = fleet(6, 6, 2);
    const perBackend = new Array<number>(6).fill(0);
    for (const slice of slices) {
      expect([...slice.values()]).to.deep.equal([1, 1]);
      for (const j of slice.keys()) perBackend[j]++;
    }
    expect(perBackend).to.deep.equal([2, 2, 2, 2, 2, 2]);
  });

  it('1,000 clients × 300 backends, k = 10: 36 or 37 clients per backend (expected 36.67), 10 or 11 backends per client', () => {
    const slices = fleet(1000, 300, 10);
    const perBackend = new Array<number>(300).fill(0);
    for (const slice of slices) for (const j of slice.keys()) perBackend[j]++;
    expect(expectedApertureConnections(1000, 300, 10)).to.be.closeTo(36.667, 0.001);
    expect(Math.min(...perBackend)).to.be.at.least(36);
    expect(Math.max(...perBackend)).to.be.at.most(37);
    for (const slice of slices) expect(slice.size).to.be.oneOf([10, 11]);
  });

  it(`for ${SHAPES.length} shapes (C, N, k): connections per backend within ±1 of expected, load max/mean ≤ 1 + N/L, fractions sum to L/C`, () => {
    for (const [c, n, k] of SHAPES) {
      const shape = `C=${c} N=${n} k=${k}`;
      const slices = fleet(c, n, k);
      const connections = new Array<number>(n).fill(0);
      const load = new Array<number>(n).fill(0);
      const length = Math.max(n, k * c);
      for (const slice of slices) {
        let total = 0;
        for (const f of slice.values()) {
          expect(f, shape).to.be.greaterThan(0).and.at.most(1);
          total += f;
        }
        if (k < n && length < n * c) expect(total, shape).to.be.closeTo(length / c, 1e-9);
        expect(slice.size, shape).to.be.at.least(Math.min(k, n));
        for (const [j, f] of slice) {
          connections[j]++;
          load[j] += f / total;
        }
      }
      const expected = expectedApertureConnections(c, n, k);
      for (const count of connections) expect(Math.abs(count - expected), `${shape}: ${count} vs ${expected}`).to.be.at.most(1);
      const mean = c / n;
      const bound = k >= n || length >= n * c ? 1 + 1e-9 : 1 + n / length + 1e-9;
      expect(Math.max(...load) / mean, shape).to.be.at.most(bound);
    }
  });

  it('a whole ring when k ≥ N, or when the index is outside the view', () => {
    expect(apertureSlice(0, 3, 4, 4)).to.deep.equal([0, 1, 2, 3].map(index => ({ index, fraction: 1 })));
    expect(apertureSlice(5, 3, 2, 1)).to.have.length(2);
    expect(apertureSlice(0, 1, 0, 3)).to.deep.equal([]);
  });

  describe('churn (connections added + removed over the clients that stay)', () => {
    /** Σ |before Δ after| over clients present in both, mapped through `clientMap` and `backendMap` (new → old identity). */
    function churn(before: Map<number, number>[], after: Map<number, number>[], oldClientOf: (i: number) => number | undefined, oldBackendOf: (j: number) => number): number {
      let total = 0;
      after.forEach((slice, i) => {
        const old = oldClientOf(i);
        if (old === undefined) return;
        const was = new Set(before[old].keys());
        const now = new Set([...slice.keys()].map(oldBackendOf));
        for (const j of now) if (!was.has(j)) total++;
        for (const j of was) if (!now.has(j)) total++;
      });
      return total;
    }

    for (const [c, n, k] of [[1000, 300, 10], [100, 30, 3], [6, 6, 2], [64, 97, 5]] as const) {
      it(`C=${c} N=${n} k=${k}: a client or a backend joining changes at most 4 connections per client on average (each slice edge moves ≤ 1 backend)`, () => {
        const before = fleet(c, n, k);
        for (const rank of [0, Math.floor(c / 2), c]) {
          // A client joins at `rank`: those after it move up one.
          const after = fleet(c + 1, n, k);
          const moved = churn(before, after, i => (i === rank ? undefined : i < rank ? i : i - 1), j => j);
          expect(moved / c, `client join at ${rank}`).to.be.at.most(4);
        }
        for (const position of [0, Math.floor(n / 2), n]) {
          // A backend joins at ring `position` (new id n): ring positions after it shift by one.
          const after = fleet(c, n + 1, k);
          const moved = churn(before, after, i => i, j => (j === position ? n : j < position ? j : j - 1));
          expect(moved / c, `backend join at ${position}`).to.be.at.most(4);
        }
      });
    }
  });
});
