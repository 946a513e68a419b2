/**
 * Address-space layout: one lane per IOAS on a shared piecewise 64-bit axis (scale.ts) with hex
 * ticks at every boundary, areas as solid bars, reservations as hatched bars labelled with their
 * owner, and under each lane the same ranges as text (exact, and what a screen reader reads).
 */
import { hex, permText, sizeText } from "../common/events.ts";
import { px, type TextLine } from "../common/svg.ts";
import { CHAR_W, clip } from "../common/text.ts";
import type { AddrSpaceState, IoasSpace } from "./model.ts";
import { piecewiseScale, U64_END } from "./scale.ts";

export interface TickMark {
  key: string;
  x: number;
  /** the label, or "" when it would overlap a neighbour (the tick stays) */
  label: string;
  /** label row, 0 or 1: alternate rows fit twice as many labels */
  row: number;
  /** the first and last labels are anchored inside the plot */
  anchor: "start" | "middle" | "end";
  landmark: boolean;
}

export interface RangeMark {
  key: string;
  kind: "area" | "reserved";
  x: number;
  y: number;
  w: number;
  h: number;
  /** inside the bar when it fits, else "" (the title and the list below have it) */
  label: string;
  title: string;
}

export interface LaneMark {
  key: string;
  y: number;
  h: number;
  lines: TextLine[];
}

export interface AddrSpaceLayout {
  width: number;
  height: number;
  header: TextLine[];
  ticks: TickMark[];
  /** axis baseline y, tick label rows below it */
  axisY: number;
  lanes: LaneMark[];
  ranges: RangeMark[];
  x0: number;
  x1: number;
  summary: string;
}

const M = 12;
const LABEL_W = 72;
const BAR_H = 20;
const LINE_H = 15;

/** Landmarks worth a tick even when nothing is there: 4 GiB and the 48-bit VT-d input limit. */
const LANDMARKS = [1n << 32n, 1n << 48n];

function rangeText(start: bigint, last: bigint): string {
  return `[${hex(start)}, ${hex(last)}] ${sizeText(last - start + 1n)}`;
}

function tickLabel(v: bigint): string {
  return v === U64_END ? "2^64" : hex(v);
}

export function layoutAddrSpace(s: AddrSpaceState, size: { width: number }): AddrSpaceLayout {
  const width = Math.max(size.width, 640);
  const x0 = M + LABEL_W;
  const x1 = width - M;
  const spaces = [...s.spaces.values()].sort((a, b) => a.ictx - b.ictx || a.id - b.id);
  const multiCtx = new Set(spaces.map((sp) => sp.ictx)).size > 1;
  const breaks = new Set<bigint>(LANDMARKS);
  for (const sp of spaces) for (const r of [...sp.areas, ...sp.reserved]) breaks.add(r.start).add(r.last + 1n);
  const x = piecewiseScale(breaks, x0, x1);

  // ticks: every cut; labels greedily on two alternating rows where they fit
  const lastEnd = [-Infinity, -Infinity];
  const cuts = [x.pieces[0].start, ...x.pieces.map((p) => p.end)];
  const ticks: TickMark[] = cuts.map((v, i) => {
    const tx = x(v);
    const label = tickLabel(v);
    const w = label.length * CHAR_W + 8;
    const anchor = i === 0 ? "start" : i === cuts.length - 1 ? "end" : "middle";
    const [from, to] = anchor === "start" ? [tx, tx + w] : anchor === "end" ? [tx - w, tx] : [tx - w / 2, tx + w / 2];
    const row = [0, 1].find((r) => from >= lastEnd[r]);
    if (row !== undefined) lastEnd[row] = to;
    return { key: v.toString(16), x: tx, label: row === undefined ? "" : label, row: row ?? 0, anchor, landmark: LANDMARKS.includes(v) };
  });

  const header: TextLine[] = [
    { key: "pinned", x: M, y: 18, text: `pinned pages (locked_vm): ${s.lockedVm} = ${sizeText(BigInt(s.lockedVm) * 4096n)}` },
    { key: "legend", x: M, y: 36, cls: "dim", text: spaces.length ? "■ area (mapped) · ▨ reserved (owner) · axis: each piece's width grows with the log of its length" : "No IOAS yet: IOMMU_IOAS_ALLOC makes one." },
  ];
  const axisY = 52;
  let y = axisY + 40;
  const lanes: LaneMark[] = [];
  const ranges: RangeMark[] = [];
  const chars = (w: number) => Math.floor((w - 6) / CHAR_W);
  for (const sp of spaces) {
    const name = `IOAS ${sp.id}${multiCtx ? ` #${sp.ictx}` : ""}`;
    const barY = y + 4;
    const bar = (kind: RangeMark["kind"], start: bigint, last: bigint, text: string, title: string, seq: number): RangeMark => {
      const rx = x(start);
      const w = Math.max(2, px(x(last + 1n) - rx));
      return { key: `${sp.key}:${kind}:${start.toString(16)}:${seq}`, kind, x: rx, y: barY, w, h: BAR_H, label: chars(w) >= 6 ? clip(text, chars(w)) : "", title };
    };
    for (const a of sp.areas) ranges.push(bar("area", a.start, a.last, `${permText(a.prot)} ${sizeText(a.last - a.start + 1n)}`, `${name} area ${rangeText(a.start, a.last)} ${permText(a.prot)}`, a.seq));
    for (const r of sp.reserved) ranges.push(bar("reserved", r.start, r.last, r.owner, `${name} reserved ${rangeText(r.start, r.last)} for ${r.owner}`, r.seq));
    const list = listLines(sp);
    const lines: TextLine[] = [
      { key: "name", x: M, y: 19, text: name, cls: "title" },
      { key: "count", x: M, y: 34, text: `${sp.areas.length} area${sp.areas.length === 1 ? "" : "s"}`, cls: "dim" },
      ...list.map((t, i) => ({ key: `r${i}`, x: x0, y: BAR_H + 22 + i * LINE_H, text: t.text, cls: t.cls })),
    ];
    const h = BAR_H + 16 + list.length * LINE_H;
    lanes.push({ key: sp.key, y, h, lines });
    y += h + 10;
  }
  const summary = spaces.length
    ? spaces.map((sp) => `IOAS ${sp.id}: ${listLines(sp).map((l) => l.text).join("; ")}`).join(". ") + `. ${header[0].text}.`
    : "No IOAS.";
  return { width, height: y + M, header, ticks, axisY, lanes, ranges, x0, x1, summary };
}

/** The ranges of an IOAS as exact text, in address order. */
function listLines(sp: IoasSpace): { text: string; cls: string }[] {
  const all = [
    ...sp.areas.map((a) => ({ start: a.start, text: `area     ${rangeText(a.start, a.last)} ${permText(a.prot)}`, cls: "area" })),
    ...sp.reserved.map((r) => ({ start: r.start, text: `reserved ${rangeText(r.start, r.last)} · ${r.owner}`, cls: "reserved" })),
  ];
  return all.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0)).map(({ text, cls }) => ({ text, cls }));
}
