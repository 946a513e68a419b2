/**
 * Walk layout: the IOVA as a 48-bit strip cut into its index fields, a line from each field down
 * to the level box that uses it, and one box per level (PML4 → PDPT → PD → PT) plus the outcome
 * (the page, or the fault). Pure: positions and text only; render.ts draws them.
 */
import { bdf, hex, permText, sizeText } from "../common/events.ts";
import { px, type TextLine } from "../common/svg.ts";
import { CHAR_W, wrap } from "../common/text.ts";
import { LEVEL_NAMES, type LevelRow, type LevelStatus, type WalkOutcome, type WalkState } from "./model.ts";

export interface FieldMark {
  key: string;
  x: number;
  y: number;
  w: number;
  h: number;
  level: number;
  lines: TextLine[];
}

export interface LinkMark {
  key: string;
  d: string;
  level: number;
  /** the level was read (solid) or not (dashed) */
  used: boolean;
}

export type BoxStatus = LevelStatus | "page" | "page-iotlb" | "outcome-fault" | "interrupt" | "outcome-pending";

export interface BoxMark {
  /** translation seq + level: a new walk's boxes enter afresh */
  key: string;
  level: number;
  /** order of appearance, for the entrance animation */
  order: number;
  x: number;
  y: number;
  w: number;
  h: number;
  status: BoxStatus;
  /** the end of the walk: the leaf (large page ends it early) or the faulting level */
  end: boolean;
  lines: TextLine[];
}

export interface WalkLayout {
  width: number;
  height: number;
  /** identity of the translation drawn ("" when none) */
  key: string;
  header: TextLine[];
  fields: FieldMark[];
  links: LinkMark[];
  boxes: BoxMark[];
  /** one sentence for screen readers */
  summary: string;
}

const M = 12;
const GAP = 14;
const MIN_BOX_W = 140;
const BAR_Y = 58;
const BAR_H = 40;
const BOX_Y = 170;
const LINE_H = 16;

/** Icon and words of each status: never colour alone. */
export const STATUS_LABEL: Record<BoxStatus, string> = {
  read: "↓ read",
  leaf: "■ leaf",
  fault: "✖ fault here",
  pwc: "⚡ PWC hit",
  iotlb: "⤼ IOTLB hit",
  large: "— unused",
  pending: "… pending",
  unreached: "· not reached",
  page: "✔ translated",
  "page-iotlb": "✔ from the IOTLB",
  "outcome-fault": "✖ DMA fault",
  interrupt: "↯ MSI",
  "outcome-pending": "… translating",
};

/** What a level that was not read says about itself, under its index. */
const NOT_READ: Partial<Record<LevelStatus, string>> = {
  pwc: "entry cached in the PWC: not read",
  iotlb: "the IOTLB has the translation: not read",
  large: "below a large page: not used",
  pending: "not read yet",
  unreached: "not reached",
};

function levelLines(r: LevelRow, chars: number): TextLine[] {
  const out: string[] = [];
  const s = r.step;
  if (s) {
    out.push(`table ${hex(s.table)}`, `index ${r.index} (0x${r.index.toString(16)})`, `entry ${hex(s.entry, 16)}`, `bits ${s.bits}${s.ad ? ` (+${s.ad} set now)` : ""}`);
    if (s.leaf && r.level > 1) out.push(`PS=1: ${sizeText(2 ** (12 + 9 * (r.level - 1)))} page`);
  } else {
    out.push(`index ${r.index} (0x${r.index.toString(16)})`, NOT_READ[r.status] ?? "");
    if (r.cachedNext !== undefined) out.push(`next table ${hex(r.cachedNext)}`);
  }
  // a narrow box breaks "entry 0x…" before the number rather than clipping it
  return out.flatMap((t) => wrap(t, chars)).map((text, i) => ({ key: `l${i}`, x: 8, y: 38 + i * LINE_H, text }));
}

function outcomeLines(o: WalkOutcome, reads: number | undefined, chars: number): { status: BoxStatus; title: string; lines: string[] } {
  switch (o.kind) {
    case "page":
      return {
        status: o.from === "iotlb" ? "page-iotlb" : "page",
        title: "page",
        lines: [`PA ${hex(o.pa)}`, `${sizeText(o.size)} page`, `perm ${permText(o.perm)}`, o.from === "iotlb" ? "no table read" : `${reads ?? "?"} memory reads`],
      };
    case "fault":
      return {
        status: "outcome-fault",
        title: "FAULT",
        lines: [`reason 0x${o.reason.toString(16)}`, ...wrap(o.name, chars, 4), o.level ? `at ${LEVEL_NAMES[o.level]} (level ${o.level})` : "before the walk"],
      };
    case "interrupt":
      return { status: "interrupt", title: "interrupt window", lines: wrap("0xFEEx_xxxx without PASID: an MSI, never translated", chars) };
    case "pending":
      return { status: "outcome-pending", title: "outcome", lines: ["…"] };
  }
}

/** The walk view's marks for a state and an available width. */
export function layoutWalk(s: WalkState, size: { width: number }): WalkLayout {
  const width = Math.max(size.width, 2 * M + 5 * MIN_BOX_W + 4 * GAP);
  const req = s.request;
  if (!req || s.iova === null) {
    return {
      width, height: 60, key: "", fields: [], links: [], boxes: [],
      header: [{ key: "empty", x: M, y: 28, text: "No DMA yet: a device read or write shows its page-table walk here.", cls: "dim" }],
      summary: "No DMA yet.",
    };
  }
  const t = s.translation;
  const key = String(t?.seq ?? req.seq);
  const header: TextLine[] = [
    {
      key: "req", x: M, y: 18,
      text: `DMA ${req.write ? "write" : "read"} by ${bdf(req.rid)}${req.pasid >= 0 ? ` PASID ${req.pasid}` : " (no PASID)"} · iova ${hex(req.iova)} len 0x${req.len.toString(16)} · page ${Math.max(s.page, 1)} at ${hex(s.iova)}`,
    },
  ];

  // the IOVA strip: bit 47 on the left, one equal slice per bit
  const bitW = (width - 2 * M) / 48;
  const fields: FieldMark[] = s.fields.map((f) => {
    const w = (f.hi - f.lo + 1) * bitW;
    return {
      key: f.name, level: f.level, x: px(M + (47 - f.hi) * bitW), y: BAR_Y, w: px(w), h: BAR_H,
      lines: [
        { key: "name", x: px(w / 2), y: 15, text: `${f.name} ${f.hi}:${f.lo}`, anchor: "middle" },
        { key: "value", x: px(w / 2), y: 32, text: `${f.value} (0x${f.value.toString(16)})`, anchor: "middle" },
      ],
    };
  });

  // context and cache story, one line each
  const cacheText = (what: string, c: "hit" | "miss" | null) => (c ? `${what} cache ${c}` : null);
  const ctxChain = t?.ctx.map((c) => `${c.what}[${c.index}]`).join(" → ");
  const story = [cacheText("context", t?.ctxCache ?? null), cacheText("PASID", t?.pasidCache ?? null), ctxChain ? `read ${ctxChain}` : null].filter(Boolean).join(" · ");
  const iotlb = t?.iotlb;
  const iotlbText = !iotlb ? (s.inProgress ? "IOTLB: not looked up yet" : "IOTLB: not looked up")
    : iotlb.hit ? `IOTLB hit (set ${iotlb.set}, way ${iotlb.way}): ${sizeText(iotlb.size)} page ${hex(iotlb.page)}, the walk was skipped`
    : `IOTLB miss (set ${iotlb.set}): walk the second-stage table`;
  header.push({ key: "ctx", x: M, y: 126, text: story || "context: no lookup yet", cls: "dim" });
  header.push({ key: "iotlb", x: M, y: 146, text: iotlbText, cls: iotlb ? (iotlb.hit ? "hit" : "miss") : "dim" });

  const boxW = (width - 2 * M - 4 * GAP) / 5;
  const chars = Math.floor((boxW - 16) / CHAR_W);
  const endLevel = s.outcome?.kind === "fault" ? s.outcome.level : t?.levels.find((l) => l.leaf)?.level ?? null;
  const boxes: BoxMark[] = s.levels.map((r, i) => {
    const lines = levelLines(r, chars);
    return {
      key: `${key}:${r.level}`, level: r.level, order: i, x: px(M + i * (boxW + GAP)), y: BOX_Y, w: px(boxW), h: 0,
      status: r.status, end: r.level === endLevel && !!r.step,
      lines: [
        { key: "title", x: 8, y: 18, text: `${r.name} · level ${r.level}` },
        ...lines,
        { key: "status", x: 8, y: 0, text: STATUS_LABEL[r.status] },
      ],
    };
  });
  if (s.outcome) {
    const o = outcomeLines(s.outcome, t?.done?.reads, chars);
    boxes.push({
      key: `${key}:out`, level: 0, order: 4, x: px(M + 4 * (boxW + GAP)), y: BOX_Y, w: px(boxW), h: 0, status: o.status,
      end: s.outcome.kind === "fault", lines: [
        { key: "title", x: 8, y: 18, text: o.title },
        ...o.lines.map((text, i) => ({ key: `l${i}`, x: 8, y: 38 + i * LINE_H, text })),
        { key: "status", x: 8, y: 0, text: STATUS_LABEL[o.status] },
      ],
    });
  }
  // every box as tall as the tallest, the status line at its foot
  const rows = Math.max(...boxes.map((b) => b.lines.length - 2));
  const boxH = 38 + rows * LINE_H + 14;
  for (const b of boxes) {
    b.h = boxH;
    b.lines[b.lines.length - 1].y = boxH - 10;
  }

  // index field → the box that uses it (the offset goes to the outcome)
  const links: LinkMark[] = fields.map((f) => {
    const box = boxes.find((b) => b.level === f.level);
    const x1 = px(f.x + f.w / 2);
    const x2 = box ? px(box.x + box.w / 2) : x1;
    const y1 = BAR_Y + BAR_H;
    const mid = (y1 + BOX_Y) / 2;
    const row = s.levels.find((r) => r.level === f.level);
    return { key: `${key}:${f.level}`, level: f.level, d: `M${x1},${y1}C${x1},${mid} ${x2},${mid} ${x2},${BOX_Y}`, used: row ? !!row.step : s.outcome?.kind === "page" };
  });

  const reads = t?.levels.length ?? 0;
  const summary = `${header[0].text}. ${iotlbText}. ${reads ? `${reads} table level${reads > 1 ? "s" : ""} read: ${s.levels.filter((r) => r.step).map((r) => `${r.name} index ${r.index}`).join(", ")}. ` : ""}${s.outcome?.kind === "fault" ? `Fault 0x${s.outcome.reason.toString(16)}: ${s.outcome.name}.` : s.outcome?.kind === "page" ? `Page at ${hex(s.outcome.pa)}.` : ""}`;
  return { width, height: BOX_Y + boxH + M, key, header, fields, links, boxes, summary };
}
