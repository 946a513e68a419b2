/**
 * IOTLB layout: counters and a hit-rate sparkline on top, the IOTLB as a sets × ways grid (one
 * row per set), then each paging-structure cache as a row of entries. The latest cache event gets
 * a badge (icon + word + outline style, never colour alone) on its slot, or on its whole set for a
 * miss; an evicted or invalidated entry stays as a dashed ghost while it is the latest event.
 * Nested IOTLB entries say "◇ nested" and the first- and second-stage leaf sizes they combine;
 * the first-stage (nested) PWC follows the second-stage one. An entry the stale-translation
 * detector caught is drawn with a heavy dashed outline and "⚠ STALE", and the header says what
 * it cached and what memory holds now, while the stale entry stays in its slot.
 */
import * as d3 from "d3";
import { hex, permText, sizeText } from "../common/events.ts";
import { px, type TextLine } from "../common/svg.ts";
import { CHAR_W, clip, wrap } from "../common/text.ts";
import { staleKey, type CacheAction, type FsPwcEntry, type IotlbState, type PwcEntry, type PwcLast, type RateWindow, type StaleMark } from "./model.ts";

export interface SlotMark {
  key: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface EntryMark extends SlotMark {
  cache: "iotlb" | "pwc" | "fspwc";
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
  /** a nested (PGTT 011) IOTLB entry */
  nested: boolean;
  /** the stale-translation detector caught a DMA served from it (until the slot changes) */
  stale: boolean;
}

export interface BadgeMark {
  /** action + seq: each event flashes once, as it enters */
  key: string;
  kind: CacheAction | "stale";
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
const CELL_H = 46;
const PWC_NAMES: Record<number, string> = { 5: "PML5E", 4: "PML4E", 3: "PDPTE", 2: "PDE" };
const CACHE_NAMES: Record<string, string> = { iotlb: "IOTLB", pwc: "second-stage PWC", fspwc: "first-stage PWC" };

/** The header line of a stale mark: what was cached and what memory holds now. */
export function staleText(m: StaleMark): string {
  const where = m.set === null ? "" : m.cache === "iotlb" ? ` set ${m.set} way ${m.way}` : ` ${PWC_NAMES[m.set] ?? `level ${m.set}`} way ${m.way}`;
  return `⚠ STALE: ${CACHE_NAMES[m.cache] ?? m.cache}${where} served iova ${hex(m.iova)} (DID ${m.did} PASID ${m.pasid}) — ${m.stage} level-${m.level} entry at ${hex(m.entryPa)}: cached ${hex(m.cached)}, memory now ${hex(m.memory)}, no invalidation since`;
}

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
  // a stale hit adds lines under "latest", and everything below moves down
  const st = s.lastStale && s.stale.get(staleKey(s.lastStale.cache, s.lastStale.set, s.lastStale.way)) === s.lastStale ? s.lastStale : null;
  const staleLines = !s.staleCount ? []
    : st ? wrap(staleText(st), Math.floor((width - 2 * M) / CHAR_W))
    : [`⚠ ${s.staleCount} stale hit${s.staleCount > 1 ? "s" : ""} so far; the stale entries have since been invalidated or refilled`];
  staleLines.forEach((t, i) => text.push({ key: `stale${i ? i : ""}`, x: M, y: 72 + i * 16, text: t, cls: "stale" }));
  const off = staleLines.length * 16 + (staleLines.length ? 2 : 0);
  const spark = { x: M + LABEL_W, y: 66 + off, w: Math.min(360, width - 2 * M - LABEL_W - 40), h: 36 };
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
  const gridY = 112 + off;
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
    const n = e.nested;
    const sizes = n && n.fsSize !== null && n.ssSize !== null ? `min(FS ${shortSize(n.fsSize)}, SS ${shortSize(n.ssSize)})` : null;
    const stale = s.stale.get(staleKey("iotlb", e.set, e.way));
    const title = `IOTLB set ${e.set} way ${e.way}: DID ${e.did}, PASID ${e.pasid}, page ${hex(e.page)}, ${sizeText(e.size)}, ${permText(e.perm)}`
      + (n ? `; nested translation${n.gpa !== null ? ` of GPA ${hex(n.gpa)}` : ""}${sizes ? `, size ${sizes}` : ""}` : "")
      + (stale ? `; ${staleText(stale)}` : "");
    // the cached size (line 2) is the smaller of the two leaves: "FS4K SS4K" names both
    const third = stale ? `⚠ STALE${n ? " · ◇ nested" : ""}` : n ? `◇ nested${n.fsSize !== null && n.ssSize !== null ? ` FS${shortSize(n.fsSize)} SS${shortSize(n.ssSize)}` : ""}` : null;
    entries.push({
      ...slotAt(e.set, e.way), key: `iotlb:${e.did}/${e.pasid}/${e.page}/${e.size}`, cache: "iotlb", set: e.set, way: e.way, title,
      latest: !!last && last.way === e.way && last.set === e.set && (last.kind === "hit" || last.kind === "fill"), ghost: false,
      nested: !!n, stale: !!stale,
      lines: [
        { key: "tag", x: 5, y: 14, text: clip(`DID ${e.did} PASID ${e.pasid}`, chars) },
        { key: "page", x: 5, y: 28, text: clip(`${hex(e.page)} ${shortSize(e.size)} ${permText(e.perm)}`, chars) },
        ...(third ? [{ key: "nested", x: 5, y: 41, text: clip(third, chars), cls: stale ? "stale" : "dim" }] : []),
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
        ...slot, key: `ghost:${last.seq}`, cache: "iotlb", set: last.set, way: last.way!, latest: true, ghost: true, nested: false, stale: false,
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
  const pwcBlock = <E extends { level: number; way: number }>(
    cache: "pwc" | "fspwc", title: string, n: number, levels: number[], list: Iterable<E>, lp: PwcLast | null,
    describe: (e: E) => { key: string; title: string; lines: string[] },
  ) => {
    text.push({ key: `${cache}-title`, x: M, y, text: title });
    y += 12;
    const pwcW = 124;
    const perRow = Math.max(1, Math.floor((width - 2 * M - LABEL_W) / (pwcW + GAP)));
    const byLevel = new Map<number, E[]>();
    for (const e of list) byLevel.set(e.level, [...(byLevel.get(e.level) ?? []), e]);
    const pslot = (level: number, way: number, top: number): SlotMark => ({
      key: `${cache === "pwc" ? "p" : "f"}${level}/${way}`, x: px(M + LABEL_W + (way % perRow) * (pwcW + GAP)), y: top + Math.floor(way / perRow) * (CELL_H + GAP), w: pwcW, h: CELL_H,
    });
    const pchars = Math.floor((pwcW - 10) / CHAR_W);
    const prefix = cache === "pwc" ? "PWC" : "FS-PWC";
    for (const level of levels) {
      const top = y;
      text.push({ key: `${cache}-lvl${level}`, x: M, y: top + 21, text: PWC_NAMES[level], cls: "dim" });
      for (let w = 0; w < n; w++) slots.push(pslot(level, w, top));
      for (const e of byLevel.get(level) ?? []) {
        const d = describe(e);
        const stale = s.stale.get(staleKey(cache, level, e.way));
        entries.push({
          ...pslot(level, e.way, top), key: d.key, cache, set: level, way: e.way, ghost: false, nested: cache === "fspwc", stale: !!stale,
          latest: !!lp && lp.level === level && lp.way === e.way && (lp.kind === "hit" || lp.kind === "fill"),
          title: d.title + (stale ? `; ${staleText(stale)}` : ""),
          lines: [...d.lines, ...(stale ? ["⚠ STALE"] : [])].map((t, i) => ({ key: `l${i}`, x: 5, y: 14 + i * 13.5, text: clip(t, pchars), cls: t === "⚠ STALE" ? "stale" : undefined })),
        });
      }
      if (lp && lp.level === level) {
        const outline = lp.way === null
          ? { ...pslot(level, 0, top), key: `${cache}-lvl${level}`, w: px(Math.min(n, perRow) * (pwcW + GAP) - GAP), h: Math.ceil(n / perRow) * (CELL_H + GAP) - GAP }
          : pslot(level, lp.way, top);
        badges.push({ key: `${cache}:${lp.kind}:${lp.seq}`, kind: lp.kind, outline, x: outline.x + outline.w - 4, y: outline.y - 3, text: `${prefix} ${ACTION_LABEL[lp.kind]}`, current: lp.seq === cursorSeq });
      }
      y = top + Math.ceil(n / perRow) * (CELL_H + GAP) + 6;
    }
  };
  if (pwcEntries > 0) {
    const pc = s.pwcCounts;
    pwcBlock(
      "pwc", `Second-stage paging-structure caches · ${pwcEntries} entries per level · hits ${pc.hit} · misses ${pc.miss} · fills ${pc.fill} · evictions ${pc.evict} · invalidations ${pc.inv}`,
      pwcEntries, [4, 3, 2], s.pwc.values(), s.lastPwc,
      (e: PwcEntry) => ({
        key: `pwc:${e.level}/${e.did}/${e.tag}`,
        title: `${PWC_NAMES[e.level]} cache way ${e.way}: DID ${e.did}, tag ${hex(e.tag)}, next table ${hex(e.table)}`,
        lines: [`DID ${e.did} tag ${hex(e.tag)}`, `→ ${hex(e.table)}`],
      }),
    );
  }
  const { fsPwcEntries } = s.geometry;
  const fc = s.fspwcCounts;
  // shown once a nested walk has used it: second-stage-only runs keep the view short
  if (fsPwcEntries > 0 && fc.hit + fc.miss + fc.fill > 0) {
    // a 5-level guest's PML5E row only once one is cached
    const levels = [...(s.fspwc.size && [...s.fspwc.values()].some((e) => e.level === 5) ? [5] : []), 4, 3, 2];
    y += 6;
    pwcBlock(
      "fspwc", `First-stage (nested) paging-structure caches · ${fsPwcEntries} entries per level · hits ${fc.hit} · misses ${fc.miss} · fills ${fc.fill} · evictions ${fc.evict} · invalidations ${fc.inv}`,
      fsPwcEntries, levels, s.fspwc.values(), s.lastFspwc,
      (e: FsPwcEntry) => ({
        key: `fspwc:${e.level}/${e.did}/${e.pasid}/${e.tag}`,
        title: `first-stage ${PWC_NAMES[e.level]} cache way ${e.way}: DID ${e.did}, PASID ${e.pasid}, tag ${hex(e.tag)}, next table at GPA ${hex(e.tableGpa)} = HPA ${hex(e.table)}`,
        lines: [`DID ${e.did} P${e.pasid} ${hex(e.tag)}`, `→ ${hex(e.table)}`, `GPA ${hex(e.tableGpa)}`],
      }),
    );
  }

  // the stale mark: a header line in words, and a heavy dashed outline on its slot
  if (st) {
    const entry = entries.find((e) => !e.ghost && e.cache === st.cache && e.set === st.set && e.way === st.way);
    if (entry) badges.push({ key: `stale:${st.seq}`, kind: "stale", outline: entry, x: entry.x + entry.w - 4, y: entry.y - 3, text: "⚠ STALE", current: st.seq === cursorSeq });
  }
  const summary = `IOTLB: ${s.iotlb.size} of ${sets * ways} entries valid; ${c.hit} hits, ${c.miss} misses (hit rate ${pct(c.hit, lookups)}). ${lastText}.${st ? ` ${staleText(st)}.` : ""}`;
  return { width, height: y + M, text, slots, entries, badges, spark: sparkline, summary };
}
