/**
 * Walk layout: the IOVA as a 48-bit strip cut into its index fields, a line from each field down
 * to the level box that uses it, and one box per level (PML4 → PDPT → PD → PT) plus the outcome
 * (the page, or the fault). A nested translation replaces the boxes by the 2D grid of nested.ts
 * (guest levels × host levels, each cell one memory read, numbered in read order) and a line for
 * the outcome. Pure: positions and text only; render.ts draws them.
 */
import { bdf, hex, permText, sizeText } from "../common/events.ts";
import { px, type TextLine } from "../common/svg.ts";
import { CHAR_W, wrap } from "../common/text.ts";
import { LEVEL_NAMES, type LevelRow, type LevelStatus, type WalkOutcome, type WalkState } from "./model.ts";
import type { CellStatus, GridCell, NestedWalk } from "./nested.ts";

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

export type BoxStatus = LevelStatus | "page" | "page-iotlb" | "page-devtlb" | "outcome-fault" | "page-request" | "interrupt" | "outcome-pending";

/** One cell of the nested grid: one memory read, or why there was none. */
export interface CellMark {
  /** translation seq + row + column: a new walk's cells enter afresh */
  key: string;
  row: number;
  col: number;
  stage: "s1" | "s2";
  status: CellStatus;
  /** read order (1-based; 0: no read), also the entrance order */
  order: number;
  x: number;
  y: number;
  w: number;
  h: number;
  /** the read the walk faulted on */
  end: boolean;
  lines: TextLine[];
  /** the whole cell in words (tooltip, screen readers) */
  title: string;
}

export interface GridLayout {
  /** column heads and row labels */
  labels: TextLine[];
  cells: CellMark[];
  /** the outcome line under the grid */
  outcome: TextLine[];
}

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
  /** the 2D grid of a nested translation (null otherwise) */
  grid: GridLayout | null;
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
  devtlb: "⤼ device-TLB hit",
  large: "— unused",
  pending: "… pending",
  unreached: "· not reached",
  page: "✔ translated",
  "page-iotlb": "✔ from the IOTLB",
  "page-devtlb": "✔ from the device-TLB",
  "outcome-fault": "✖ DMA fault",
  "page-request": "? page request",
  interrupt: "↯ MSI",
  "outcome-pending": "… translating",
};

/** What a level that was not read says about itself, under its index. */
const NOT_READ: Partial<Record<LevelStatus, string>> = {
  pwc: "entry cached in the PWC: not read",
  iotlb: "the IOTLB has the translation: not read",
  devtlb: "the device-TLB has the translation: the IOMMU was not asked",
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
        status: o.from === "iotlb" ? "page-iotlb" : o.from === "devtlb" ? "page-devtlb" : "page",
        title: "page",
        lines: [`PA ${hex(o.pa)}`, `${sizeText(o.size)} page`, `perm ${permText(o.perm)}`, o.from === "walk" ? `${reads ?? "?"} memory reads` : "no table read"],
      };
    case "page-request":
      return {
        status: "page-request",
        title: "no access",
        lines: [
          ...wrap("ATS completion R=W=0: nothing recorded, the device asks for the page", chars, 3),
          o.group !== null ? `page request PRGI ${o.group}` : "no page request",
          o.response ? `response: ${o.response.name}` : o.group !== null ? "waiting for the response" : "",
        ].filter(Boolean),
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

/** Icon and words of each grid cell status: never colour alone. */
export const CELL_LABEL: Record<CellStatus, string> = {
  read: "↓ read",
  leaf: "■ leaf",
  fault: "✖ fault",
  fspwc: "⚡ skipped (cache hit)",
  pwc: "⚡ skipped (cache hit)",
  iotlb: "⤼ skipped (cache hit)",
  large: "— not needed",
  pending: "… pending",
  unreached: "· not reached",
};

/** What a cell without a read says: why there was none (which cache answered, or what else). */
const CELL_LINES: Partial<Record<CellStatus, string[]>> = {
  fspwc: ["⚡ skipped", "(cache hit)", "first-stage PWC"],
  pwc: ["⚡ skipped", "(cache hit)", "second-stage PWC"],
  iotlb: ["⤼ skipped", "(cache hit)", "IOTLB"],
  large: ["— not needed", "below a large page"],
  pending: ["… pending", "not read yet"],
  unreached: ["· not reached", "the walk ended"],
};

const HOST_NAMES: Record<number, string> = { 5: "PML5", 4: "PML4", 3: "PDPT", 2: "PD", 1: "PT" };
const GRID_LABEL_W = 132;
const CELL_GAP = 6;
const CELL_LINE_H = 14;

function cellLines(c: GridCell, chars: number, fault: NestedWalk["fault"]): string[] {
  const out: string[] = [];
  const r = c.reads[c.reads.length - 1];
  if (r) {
    const nums = c.reads.map((x) => `#${x.n}`).join(" ");
    out.push(`${nums} ${CELL_LABEL[c.status]}${c.status === "fault" && fault ? ` 0x${fault.reason.toString(16)}` : ""}`);
    out.push(`table ${hex(r.step.table)}`, `index ${r.step.index}`, `entry ${hex(r.step.entry)}`, `bits ${r.step.bits}${r.step.ad ? ` +${r.step.ad}` : ""}`);
    if (c.status === "fault" && fault) out.push(...wrap(fault.name, chars, 2));
  } else {
    out.push(...(CELL_LINES[c.status] ?? [CELL_LABEL[c.status]]));
    if (c.index !== null) out.push(`index ${c.index}`);
  }
  return out.flatMap((t) => (t.length > chars ? wrap(t, chars) : [t]));
}

function cellTitle(c: GridCell, rowName: string, fault: NestedWalk["fault"]): string {
  const where = c.stage === "s1" ? `guest ${rowName} entry (first stage, level ${c.row})` : `host ${HOST_NAMES[c.col]} entry (second stage) for the ${rowName}${c.row ? "'s GPA" : ""}`;
  const r = c.reads[c.reads.length - 1];
  if (!r) return `${where}: ${(CELL_LINES[c.status] ?? [CELL_LABEL[c.status]]).join(" ")}`;
  return `read #${c.reads.map((x) => x.n).join(", #")}: ${where}, table ${hex(r.step.table)} index ${r.step.index}, entry ${hex(r.step.entry, 16)} (${r.step.bits})${c.status === "fault" && fault ? `: fault 0x${fault.reason.toString(16)} ${fault.name}` : ""}`;
}

/** The nested grid under the header, from y = `top`. Returns the grid and its bottom. */
function layoutGrid(n: NestedWalk, key: string, width: number, top: number): { grid: GridLayout; bottom: number; text: string } {
  const cols = n.ssLevels + 1;
  const cellW = Math.max(118, (width - 2 * M - GRID_LABEL_W - (cols - 1) * CELL_GAP) / cols);
  const chars = Math.floor((cellW - 12) / CHAR_W);
  const labels: TextLine[] = [];
  const colX = (i: number) => px(M + GRID_LABEL_W + i * (cellW + CELL_GAP));
  for (let i = 0; i < cols; i++) {
    const head = i < n.ssLevels ? `host ${HOST_NAMES[n.ssLevels - i]} (s2)` : "guest entry (s1)";
    labels.push({ key: `col${i}`, x: px(colX(i) + cellW / 2), y: top + 12, text: head, anchor: "middle", cls: "dim" });
  }
  const cellLists = n.rows.map((row) => row.cells.map((c) => cellLines(c, chars, n.fault)));
  const maxLines = Math.max(4, ...cellLists.flat().map((l) => l.length));
  const cellH = 10 + maxLines * CELL_LINE_H;
  const cells: CellMark[] = [];
  let y = top + 22;
  n.rows.forEach((row, ri) => {
    const rowLines = [
      row.fsLevel ? `guest ${row.name}` : "final GPA",
      row.fsLevel ? `(s1 level ${row.fsLevel})` : "(the data page)",
      row.gpa !== null ? `GPA ${hex(row.gpa)}` : "GPA not fetched",
    ];
    rowLines.forEach((text, i) => labels.push({ key: `row${row.fsLevel}:${i}`, x: M, y: y + 16 + i * CELL_LINE_H, text, cls: i ? "dim" : undefined }));
    row.cells.forEach((c, ci) => {
      const lines = cellLists[ri][ci];
      const order = c.reads.length ? c.reads[0].n : 0;
      cells.push({
        key: `${key}:${c.row}:${c.col}`, row: c.row, col: c.col, stage: c.stage, status: c.status, order,
        x: colX(ci), y, w: px(cellW), h: cellH, end: c.status === "fault", title: cellTitle(c, row.name, n.fault),
        lines: lines.map((text, i) => ({ key: `l${i}`, x: 6, y: 16 + i * CELL_LINE_H, text, cls: i === 0 ? `st st-${c.status}` : undefined })),
      });
    });
    y += cellH + CELL_GAP;
  });
  const reads = n.reads.length;
  let text: string;
  if (n.fault) {
    const at = n.fault.row === null ? "before any table read" : n.fault.col === 0 ? `on the guest ${FS_NAME[n.fault.row] ?? ""} entry (first stage)` : `on the host ${HOST_NAMES[n.fault.col ?? 0]} entry (second stage) for the ${n.fault.row ? `guest ${FS_NAME[n.fault.row]}` : "final GPA"}`;
    text = `✖ fault 0x${n.fault.reason.toString(16)} ${n.fault.name}, ${at} · ${reads} memory read${reads === 1 ? "" : "s"}`;
  } else if (n.done) {
    const sizes = n.done.fsSize !== null && n.done.ssSize !== null ? ` = min(guest ${sizeText(n.done.fsSize)}, host ${sizeText(n.done.ssSize)})` : "";
    text = `✔ ${n.done.gpa !== null ? `GPA ${hex(n.done.gpa)} → ` : ""}HPA ${hex(n.done.pa)} · cached as ${sizeText(n.done.size)}${sizes} · ${reads} memory read${reads === 1 ? "" : "s"} of ${(n.fsLevels + 1) * n.ssLevels + n.fsLevels} for a cold walk`;
  } else text = `… ${reads} memory read${reads === 1 ? "" : "s"} so far`;
  const outcome: TextLine[] = [{ key: "outcome", x: M, y: y + 14, text, cls: n.fault ? "err" : n.done ? "ok" : "dim" }];
  return { grid: { labels, cells, outcome }, bottom: y + 22, text };
}

const FS_NAME: Record<number, string> = { 5: "PML5", 4: "PML4", 3: "PDPT", 2: "PD", 1: "PT" };

/** The walk view's marks for a state and an available width. */
export function layoutWalk(s: WalkState, size: { width: number }): WalkLayout {
  const width = Math.max(size.width, 2 * M + 5 * MIN_BOX_W + 4 * GAP);
  const req = s.request;
  if (!req || s.iova === null) {
    return {
      width, height: 60, key: "", fields: [], links: [], boxes: [], grid: null,
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
  const nested = s.nested;
  const iotlbText = t?.devtlb?.hit ? `device-TLB hit (ATS): ${sizeText(t.devtlb.size ?? 4096)} page, the IOMMU was not asked`
    : !iotlb ? (s.inProgress ? "IOTLB: not looked up yet" : "IOTLB: not looked up")
    : iotlb.hit ? `IOTLB hit (set ${iotlb.set}, way ${iotlb.way}): ${sizeText(iotlb.size)} page ${hex(iotlb.page)}, the walk was skipped`
    : nested ? `IOTLB miss (set ${iotlb.set}): nested walk, the guest's table (first stage) through the host's (second stage)`
    : `IOTLB miss (set ${iotlb.set}): walk the second-stage table`;
  const ats = t?.ats ? ` · ATS translation request${t.atsDone ? ` → ${t.atsDone.status === "UR" ? "Unsupported Request" : t.atsDone.perm ? `granted ${permText(t.atsDone.perm)}` : "no access"}` : ""}` : "";
  header.push({ key: "ctx", x: M, y: 126, text: (story || "context: no lookup yet") + ats, cls: "dim" });
  header.push({ key: "iotlb", x: M, y: 146, text: iotlbText, cls: iotlb || t?.devtlb?.hit ? (iotlb?.hit || t?.devtlb?.hit ? "hit" : "miss") : "dim" });
  if (nested && t) {
    const fs = t.fspwc;
    const hit = nested.fspwcHit;
    const fsText = !fs.length ? (iotlb?.hit ? "first-stage PWC: not needed" : "first-stage PWC: not looked up")
      : hit ? `first-stage PWC hit at ${FS_NAME[hit.level]}E: next table at HPA ${hex(hit.table ?? 0)} (GPA ${hex(hit.tableGpa ?? 0)}) — every read above it skipped`
      : `first-stage PWC miss (${fs.map((p) => `${FS_NAME[p.level]}E`).join(", ")})`;
    header.push({ key: "fspwc", x: M, y: 164, text: fsText, cls: hit ? "hit" : fs.length ? "miss" : "dim" });
    const g = layoutGrid(nested, key, width, 176);
    const summary = `${header[0].text}. Nested walk. ${iotlbText}. ${fsText}. ${nested.reads.length} memory reads in order: ${nested.reads.map((r) => (r.step.stage === "s2" ? `host ${HOST_NAMES[r.step.level]} for guest ${r.step.fsLevel ? FS_NAME[r.step.fsLevel] : "page"}` : `guest ${FS_NAME[r.step.level]}`)).join(", ")}. ${g.text}`;
    return { width, height: g.bottom + M, key, header, fields, links: [], boxes: [], grid: g.grid, summary };
  }

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
  return { width, height: BOX_Y + boxH + M, key, header, fields, links, boxes, grid: null, summary };
}
