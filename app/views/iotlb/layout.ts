/**
 * IOTLB layout: counters and a hit-rate sparkline on top, the IOTLB as a sets × ways grid (one
 * row per set), then each paging-structure cache as a row of entries. The latest cache event gets
 * a badge (icon + word + outline style, never colour alone) on its slot, or on its whole set for a
 * miss; an evicted or invalidated entry stays as a dashed ghost while it is the latest event.
 */
import * as d3 from "d3";
import { hex, permText, sizeText } from "../common/events.ts";
import { px, type TextLine } from "../common/svg.ts";
import { CHAR_W, clip } from "../common/text.ts";
import type { CacheAction, IotlbState, PwcEntry, RateWindow } from "./model.ts";

export interface SlotMark {
  key: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface EntryMark extends SlotMark {
  cache: "iotlb" | "pwc";
  /** the IOTLB set; for a PWC entry, its level */
  set: number;
  way: number;
  lines: TextLine[];
  /** full description, for the tooltip and screen readers */
  title: string;
  /** the subject of the latest event */
  latest: boolean;
  /** a dashed ghost of an entry the latest event removed */
  ghost: boolean;
}

export interface BadgeMark {
  /** action + seq: each event flashes once, as it enters */
  key: string;
  kind: CacheAction;
  /** the outlined area: a slot, or a whole set for a miss */
  outline: SlotMark;
  x: number;
  y: number;
  text: string;
  /** the event is the one at the cursor (not merely the latest before it) */
  current: boolean;
}

export interface Sparkline {
  x: number;
  y: number;
  w: number;
  h: number;
  /** the hit-rate line, with gaps where a window had no lookup */
  d: string;
  label: string;
}

export interface IotlbLayout {
  width: number;
  height: number;
  text: TextLine[];
  slots: SlotMark[];
  entries: EntryMark[];
  badges: BadgeMark[];
  spark: Sparkline;
  summary: string;
}

/** Icon and word per action; the outline style per action is in iotlb.css. */
export const ACTION_LABEL: Record<CacheAction, string> = { hit: "✓ hit", miss: "✗ miss", fill: "+ fill", evict: "− evict", inv: "⌀ inv" };

const M = 12;
const LABEL_W = 64;
const GAP = 4;
const CELL_H = 34;
const PWC_NAMES: Record<number, string> = { 4: "PML4E", 3: "PDPTE", 2: "PDE" };

function shortSize(size: number | null): string {
  if (size === null) return "";
  return sizeText(size).replace(" KiB", "K").replace(" MiB", "M").replace(" GiB", "G");
}

function pct(hits: number, total: number): string {
  return total ? `${Math.round((100 * hits) / total)}%` : "–";
}

/** Lay out the caches at the cursor. `cursorSeq` tells whether the latest event is the one at the cursor. */
export function layoutIotlb(s: IotlbState, rates: RateWindow[], cursorSeq: number, size: { width: number }): IotlbLayout {
  const { sets, ways, pwcEntries } = s.geometry;
  const cellW = Math.max(118, Math.min(200, (size.width - 2 * M - LABEL_W - GAP * ways) / ways));
  const width = Math.max(size.width, 2 * M + LABEL_W + ways * (cellW + GAP), 560);
  const chars = Math.floor((cellW - 10) / CHAR_W);
  const c = s.counts;
  const lookups = c.hit + c.miss;
  const text: TextLine[] = [
    { key: "title", x: M, y: 18, text: `IOTLB · ${sets} sets × ${ways} ways · ${s.iotlb.size} of ${sets * ways} valid` },
    { key: "counts", x: M, y: 36, text: `hits ${c.hit} · misses ${c.miss} · hit rate ${pct(c.hit, lookups)} · fills ${c.fill} · evictions ${c.evict} · invalidations ${c.inv}`, cls: "dim" },
  ];
  const last = s.last;
  const lastText = last
    ? `latest: ${ACTION_LABEL[last.kind]} set ${last.set}${last.way !== null ? ` way ${last.way}` : ""} · DID ${last.did} PASID ${last.pasid} page ${hex(last.page)}${last.size ? ` (${sizeText(last.size)})` : ""}${last.by ? ` by ${last.by}` : ""}`
    : "latest: no IOTLB lookup yet";
  text.push({ key: "last", x: M, y: 54, cls: last ? `act-${last.kind}` : "dim", text: lastText });

  // the sparkline, on its own row under the counters
  const spark = { x: M + LABEL_W, y: 66, w: Math.min(360, width - 2 * M - LABEL_W - 40), h: 36 };
  const xs = d3.scaleLinear().domain([0, Math.max(rates.length, 1)]).range([spark.x, spark.x + spark.w]);
  const ys = d3.scaleLinear().domain([0, 1]).range([spark.y + spark.h, spark.y]);
  const line = d3
    .line<RateWindow>()
    .defined((w) => w.lookups > 0)
    .x((_, i) => px(xs(i + 0.5)))
    .y((w) => px(ys(w.hits / w.lookups)));
  const sparkline: Sparkline = { ...spark, d: line(rates) ?? "", label: `hit rate over time, ${rates.length} windows` };
  text.push({ key: "spark", x: M, y: spark.y + 22, text: "hit rate", cls: "dim" });
  text.push({ key: "spark-hi", x: spark.x + spark.w + 4, y: spark.y + 9, text: "100%", cls: "dim" });
  text.push({ key: "spark-lo", x: spark.x + spark.w + 4, y: spark.y + spark.h, text: "0%", cls: "dim" });

  // IOTLB grid
  const gridY = 112;
  const slotAt = (set: number, way: number): SlotMark => ({
    key: `i${set}/${way}`, x: px(M + LABEL_W + way * (cellW + GAP)), y: gridY + 18 + set * (CELL_H + GAP), w: px(cellW), h: CELL_H,
  });
  const slots: SlotMark[] = [];
  for (let w = 0; w < ways; w++) text.push({ key: `way${w}`, x: px(M + LABEL_W + w * (cellW + GAP) + cellW / 2), y: gridY + 12, text: `way ${w}`, anchor: "middle", cls: "dim" });
  for (let set = 0; set < sets; set++) {
    text.push({ key: `set${set}`, x: M, y: gridY + 18 + set * (CELL_H + GAP) + 21, text: `set ${set}`, cls: "dim" });
    for (let w = 0; w < ways; w++) slots.push(slotAt(set, w));
  }
  const entries: EntryMark[] = [];
  for (const e of s.iotlb.values()) {
    const title = `IOTLB set ${e.set} way ${e.way}: DID ${e.did}, PASID ${e.pasid}, page ${hex(e.page)}, ${sizeText(e.size)}, ${permText(e.perm)}`;
    entries.push({
      ...slotAt(e.set, e.way), key: `iotlb:${e.did}/${e.pasid}/${e.page}/${e.size}`, cache: "iotlb", set: e.set, way: e.way, title,
      latest: !!last && last.way === e.way && last.set === e.set && (last.kind === "hit" || last.kind === "fill"), ghost: false,
      lines: [
        { key: "tag", x: 5, y: 14, text: clip(`DID ${e.did} PASID ${e.pasid}`, chars) },
        { key: "page", x: 5, y: 28, text: clip(`${hex(e.page)} ${shortSize(e.size)} ${permText(e.perm)}`, chars) },
      ],
    });
  }
  const badges: BadgeMark[] = [];
  if (last) {
    const slot = last.way === null ? null : slotAt(last.set, last.way);
    const row = slotAt(last.set, 0);
    const outline = slot ?? { ...row, key: `set${last.set}`, w: px(ways * (cellW + GAP) - GAP) };
    if (slot && (last.kind === "evict" || last.kind === "inv")) {
      entries.push({
        ...slot, key: `ghost:${last.seq}`, cache: "iotlb", set: last.set, way: last.way!, latest: true, ghost: true,
        title: `${last.kind === "evict" ? "evicted" : `invalidated by ${last.by}`}: DID ${last.did}, PASID ${last.pasid}, page ${hex(last.page)}`,
        lines: [
          { key: "tag", x: 5, y: 14, text: clip(`DID ${last.did} PASID ${last.pasid}`, chars) },
          { key: "page", x: 5, y: 28, text: clip(`${hex(last.page)} ${shortSize(last.size)}`, chars) },
        ],
      });
    }
    badges.push({ key: `iotlb:${last.kind}:${last.seq}`, kind: last.kind, outline, x: outline.x + outline.w - 4, y: outline.y - 3, text: ACTION_LABEL[last.kind], current: last.seq === cursorSeq });
  }
  let y = gridY + 18 + sets * (CELL_H + GAP) + 28;

  // paging-structure caches: one block per level, wrapped in rows
  if (pwcEntries > 0) {
    const pc = s.pwcCounts;
    text.push({ key: "pwc-title", x: M, y, text: `Paging-structure caches · ${pwcEntries} entries per level · hits ${pc.hit} · misses ${pc.miss} · fills ${pc.fill} · evictions ${pc.evict} · invalidations ${pc.inv}` });
    y += 12;
    const pwcW = 118;
    const perRow = Math.max(1, Math.floor((width - 2 * M - LABEL_W) / (pwcW + GAP)));
    const byLevel = new Map<number, PwcEntry[]>();
    for (const e of s.pwc.values()) byLevel.set(e.level, [...(byLevel.get(e.level) ?? []), e]);
    const pslot = (level: number, way: number, top: number): SlotMark => ({
      key: `p${level}/${way}`, x: px(M + LABEL_W + (way % perRow) * (pwcW + GAP)), y: top + Math.floor(way / perRow) * (CELL_H + GAP), w: pwcW, h: CELL_H,
    });
    const pchars = Math.floor((pwcW - 10) / CHAR_W);
    const lp = s.lastPwc;
    for (const level of [4, 3, 2]) {
      const top = y;
      text.push({ key: `lvl${level}`, x: M, y: top + 21, text: PWC_NAMES[level], cls: "dim" });
      for (let w = 0; w < pwcEntries; w++) slots.push(pslot(level, w, top));
      for (const e of byLevel.get(level) ?? []) {
        entries.push({
          ...pslot(level, e.way, top), key: `pwc:${e.level}/${e.did}/${e.tag}`, cache: "pwc", set: level, way: e.way, ghost: false,
          latest: !!lp && lp.level === level && lp.way === e.way && (lp.kind === "hit" || lp.kind === "fill"),
          title: `${PWC_NAMES[level]} cache way ${e.way}: DID ${e.did}, tag ${hex(e.tag)}, next table ${hex(e.table)}`,
          lines: [
            { key: "tag", x: 5, y: 14, text: clip(`DID ${e.did} tag ${hex(e.tag)}`, pchars) },
            { key: "table", x: 5, y: 28, text: clip(`→ ${hex(e.table)}`, pchars) },
          ],
        });
      }
      if (lp && lp.level === level) {
        const outline = lp.way === null
          ? { ...pslot(level, 0, top), key: `lvl${level}`, w: px(Math.min(pwcEntries, perRow) * (pwcW + GAP) - GAP), h: Math.ceil(pwcEntries / perRow) * (CELL_H + GAP) - GAP }
          : pslot(level, lp.way, top);
        badges.push({ key: `pwc:${lp.kind}:${lp.seq}`, kind: lp.kind, outline, x: outline.x + outline.w - 4, y: outline.y - 3, text: `PWC ${ACTION_LABEL[lp.kind]}`, current: lp.seq === cursorSeq });
      }
      y = top + Math.ceil(pwcEntries / perRow) * (CELL_H + GAP) + 6;
    }
  }
  const summary = `IOTLB: ${s.iotlb.size} of ${sets * ways} entries valid; ${c.hit} hits, ${c.miss} misses (hit rate ${pct(c.hit, lookups)}). ${lastText}.`;
  return { width, height: y + M, text, slots, entries, badges, spark: sparkline, summary };
}
