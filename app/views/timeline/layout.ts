/**
 * Timeline layout. The static layer: one lane per family that has events, its histogram bins
 * gathered into 2-px columns (bar height grows with the log of the count), and an axis with ticks.
 * The interactive layer (`layoutPlayhead`): the cursor's line and the selection's, cheap enough
 * to recompute every frame of playback.
 */
import * as d3 from "d3";
import { EVENT_FAMILIES } from "../../../engine/trace/events.ts";
import { px } from "../common/svg.ts";
import type { TraceEvent } from "../common/events.ts";
import { BINS, LANES, xOf, type Axis, type TimelineModel } from "./model.ts";

export interface LaneMark {
  /** the family prefix, "vtd.walk." */
  key: string;
  label: string;
  /** the family's one-line description (EVENT_FAMILIES) */
  title: string;
  count: number;
  y: number;
  h: number;
}

export interface BarMark {
  /** lane + 2-px column */
  key: string;
  lane: string;
  x: number;
  y: number;
  w: number;
  h: number;
  count: number;
}

export interface TickMark {
  key: string;
  x: number;
  label: string;
}

export interface TimelineLayout {
  width: number;
  height: number;
  axis: Axis;
  /** the plot area: lanes and scrubber */
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  /** the axis domain is [0, max] */
  max: number;
  /** lane label font size: lanes shrink to fit the pane, their labels with them */
  labelPx: number;
  lanes: LaneMark[];
  bars: BarMark[];
  ticks: TickMark[];
  summary: string;
}

const M = 8;
const LABEL_W = 112;
/** Lane height: as much of the pane as fits, between these */
const LANE_MIN = 9;
const LANE_MAX = 16;
/** below the lanes: the tick labels */
const FOOT = 20;
const COL = 2;

/** "3.1 µs": simulated nanoseconds in the unit that reads best. */
export function formatNs(ns: number): string {
  if (ns < 1e3) return `${ns} ns`;
  if (ns < 1e6) return `${+(ns / 1e3).toFixed(1)} µs`;
  if (ns < 1e9) return `${+(ns / 1e6).toFixed(1)} ms`;
  return `${+(ns / 1e9).toFixed(2)} s`;
}

/** A position on an axis as text: a time, or an event number. */
export function formatX(x: number, axis: Axis): string {
  return axis === "time" ? formatNs(x) : `#${Math.round(x) + 1}`;
}

/** The static layer for an available size (the height decides the lane height). */
export function layoutTimeline(m: TimelineModel, axis: Axis, size: { width: number; height: number }): TimelineLayout {
  const width = Math.max(size.width, 360);
  const x0 = M + LABEL_W;
  const x1 = width - M;
  const y0 = 6;
  const shown = LANES.map((key, i) => ({ key, i })).filter(({ i }) => m.totals[i] > 0);
  const laneH = Math.max(LANE_MIN, Math.min(LANE_MAX, Math.floor((size.height - y0 - FOOT) / Math.max(1, shown.length))));
  const max = Math.max(m.end[axis], 1);
  const scale = d3.scaleLinear().domain([0, max]).range([x0, x1]);
  const h = m.hist[axis];
  const lanes: LaneMark[] = [];
  const bars: BarMark[] = [];
  const columns = Math.ceil((x1 - x0) / COL) + 1;
  shown.forEach(({ key, i }, row) => {
    const y = y0 + row * laneH;
    lanes.push({ key, label: key.replace(/\.$/, ""), title: EVENT_FAMILIES[key], count: m.totals[i], y, h: laneH });
    // gather bins into pixel columns
    const cols = new Map<number, number>();
    const counts = h.counts[i];
    for (let j = 0; j < BINS; j++) {
      if (!counts[j]) continue;
      const c = Math.floor((scale(Math.min((j + 0.5) * h.width, max)) - x0) / COL);
      cols.set(c, (cols.get(c) ?? 0) + counts[j]);
    }
    const peak = Math.max(1, ...cols.values());
    for (const [c, count] of cols) {
      if (c < 0 || c >= columns) continue;
      const bh = Math.max(3, px(((laneH - 3) * Math.log1p(count)) / Math.log1p(peak)));
      bars.push({ key: `${key}${c}`, lane: key, x: px(x0 + c * COL), y: px(y + (laneH - bh) / 2), w: COL, h: bh, count });
    }
  });
  const y1 = y0 + Math.max(1, shown.length) * laneH;
  const ticks: TickMark[] = scale.ticks(Math.max(2, Math.floor((x1 - x0) / 90))).map((v) => ({ key: String(v), x: px(scale(v)), label: formatX(v, axis) }));
  const total = m.totals.reduce((a, b) => a + b, 0);
  const summary = `${total} events over ${axis === "time" ? formatNs(max) : `${max + 1} events`} in ${shown.length} families: ${lanes.map((l) => `${l.label} ${l.count}`).join(", ")}.`;
  return { width, height: y1 + FOOT, axis, x0, x1, y0, y1, max, labelPx: Math.min(12, laneH - 1), lanes, bars, ticks, summary };
}

export interface PlayheadLayout {
  /** the cursor's line, and its event in words (shown beside the controls, always in view) */
  cursor: { x: number; text: string } | null;
  selected: { x: number } | null;
}

/** The cursor's and the selection's marks (trace indices; -1: none). `live` labels the cursor "live". */
export function layoutPlayhead(l: TimelineLayout, events: readonly TraceEvent[], cursorIdx: number, selectedIdx: number, live: boolean): PlayheadLayout {
  const x = (idx: number) => px(l.x0 + (xOf(events, idx, l.axis) / l.max) * (l.x1 - l.x0));
  const e = events[cursorIdx];
  return {
    cursor: e ? { x: x(cursorIdx), text: `${live ? "live · " : ""}#${e.seq} ${e.k} · ${formatNs(e.t)}` } : null,
    selected: selectedIdx >= 0 ? { x: x(selectedIdx) } : null,
  };
}
