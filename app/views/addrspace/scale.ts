/**
 * A piecewise scale for the 64-bit IOVA axis. A linear axis from 0 to 2^64 would draw a 16 KiB
 * area at 0x100000 and the whole 4 GiB below it as one pixel; a log axis cannot show both ends of
 * the 2^48..2^64 aperture. Instead, the axis is cut at every boundary the view shows (area and
 * reservation ends, plus landmarks) and each piece gets a width that grows with the log of its
 * length: small and huge ranges are both readable, and within a piece the scale is linear.
 */
import { px } from "../common/svg.ts";

export const U64_END = 1n << 64n;

export interface Piece {
  /** [start, end): end exclusive, up to 2^64 */
  start: bigint;
  end: bigint;
  x0: number;
  x1: number;
}

export interface PiecewiseScale {
  pieces: Piece[];
  /** the x of an address in [0, 2^64] */
  (v: bigint): number;
}

function log2(n: bigint): number {
  return n.toString(2).length - 1;
}

/** A scale over [0, 2^64] cut at `breaks`, onto [x0, x1]. */
export function piecewiseScale(breaks: Iterable<bigint>, x0: number, x1: number): PiecewiseScale {
  const cuts = [...new Set([0n, U64_END, ...breaks].filter((b) => b >= 0n && b <= U64_END))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // a piece of 2^k bytes weighs k + 4: a single page (k = 12) still gets a third of a 2^36 piece
  const weights = cuts.slice(1).map((end, i) => log2(end - cuts[i]) + 4);
  const total = weights.reduce((a, w) => a + w, 0);
  const pieces: Piece[] = [];
  let x = x0;
  cuts.slice(1).forEach((end, i) => {
    const w = ((x1 - x0) * weights[i]) / total;
    pieces.push({ start: cuts[i], end, x0: x, x1: x + w });
    x += w;
  });
  const scale = ((v: bigint): number => {
    let lo = 0;
    let hi = pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (pieces[mid].start <= v) lo = mid;
      else hi = mid - 1;
    }
    const p = pieces[lo];
    const frac = Number(((v - p.start) * 1_000_000n) / (p.end - p.start)) / 1_000_000;
    return px(p.x0 + Math.min(1, frac) * (p.x1 - p.x0));
  }) as PiecewiseScale;
  scale.pieces = pieces;
  return scale;
}
