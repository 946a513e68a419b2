/**
 * Every event on one axis, in lanes by family (EVENT_FAMILIES: "sys.", "dma.", "vtd.walk.", …; an
 * event goes to the longest family that prefixes its kind). The axis is simulated time `t` or the
 * event's position in the trace ("seq": system calls take no simulated time, so on the time axis
 * a script's ioctls stack up at one instant).
 *
 * Drawing 100k ticks is neither fast nor readable, so each lane keeps a histogram: a fixed number
 * of bins over [0, bins × width), the width doubling (and neighbouring bins merging) whenever an
 * event lands beyond the end. Appending is O(1) per event, re-binning O(bins), and the layout
 * reads bins, never events.
 */
import { EVENT_FAMILIES } from "../../../engine/trace/events.ts";
import { Incremental } from "../common/incremental.ts";
import type { TraceEvent } from "../common/events.ts";

export type Axis = "time" | "seq";

/** Lane prefixes, in the catalogue's order. */
export const LANES: readonly string[] = Object.keys(EVENT_FAMILIES);

/** Bins per lane histogram (a power of two, so halving is exact). */
export const BINS = 1024;

export interface Histogram {
  /** x units per bin: ns on the time axis, events on the seq axis */
  width: number;
  /** per lane: BINS counts */
  counts: Uint32Array[];
}

export class TimelineModel extends Incremental {
  readonly hist: Record<Axis, Histogram> = { time: newHist(), seq: newHist() };
  /** events per lane */
  totals = new Array<number>(LANES.length).fill(0);
  /** x of the last event on each axis */
  readonly end: Record<Axis, number> = { time: 0, seq: 0 };
  private readonly laneOfKind = new Map<string, number>();

  protected reset(): void {
    this.hist.time = newHist();
    this.hist.seq = newHist();
    this.totals = new Array<number>(LANES.length).fill(0);
    this.end.time = 0;
    this.end.seq = 0;
  }

  protected add(e: TraceEvent, index: number): void {
    const lane = this.laneOf(e.k);
    this.totals[lane]++;
    put(this.hist.time, lane, e.t);
    put(this.hist.seq, lane, index);
    this.end.time = e.t;
    this.end.seq = index;
  }

  /** The lane of an event kind: its longest family prefix. */
  laneOf(kind: string): number {
    let lane = this.laneOfKind.get(kind);
    if (lane === undefined) {
      lane = -1;
      for (let i = 0; i < LANES.length; i++) if (kind.startsWith(LANES[i]) && (lane < 0 || LANES[i].length > LANES[lane].length)) lane = i;
      if (lane < 0) throw new Error(`event kind ${kind} is in no family of EVENT_FAMILIES`);
      this.laneOfKind.set(kind, lane);
    }
    return lane;
  }
}

function newHist(): Histogram {
  return { width: 1, counts: LANES.map(() => new Uint32Array(BINS)) };
}

function put(h: Histogram, lane: number, x: number): void {
  while (x >= h.width * BINS) {
    // twice as wide: bin j takes bins 2j and 2j + 1
    for (const c of h.counts) {
      for (let j = 0; j < BINS / 2; j++) c[j] = c[2 * j] + c[2 * j + 1];
      c.fill(0, BINS / 2);
    }
    h.width *= 2;
  }
  h.counts[lane][Math.floor(x / h.width)]++;
}

/** The x of the event at trace index `idx` on an axis. */
export function xOf(events: readonly TraceEvent[], idx: number, axis: Axis): number {
  return axis === "time" ? events[idx].t : idx;
}

/**
 * The trace index of the event nearest to `x` on an axis. On the time axis several events share
 * an instant: the last of them is taken, the state once that instant is over.
 */
export function nearestIndex(events: readonly TraceEvent[], x: number, axis: Axis): number {
  const n = events.length;
  if (!n) return -1;
  if (axis === "seq") return Math.max(0, Math.min(n - 1, Math.round(x)));
  // first event with t > x
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (events[mid].t <= x) lo = mid + 1;
    else hi = mid;
  }
  if (lo === 0) return 0;
  if (lo === n) return n - 1;
  const before = lo - 1; // the last event at or before x
  if (x - events[before].t <= events[lo].t - x) return before;
  // the next instant: its last event
  const t = events[lo].t;
  while (lo + 1 < n && events[lo + 1].t === t) lo++;
  return lo;
}
