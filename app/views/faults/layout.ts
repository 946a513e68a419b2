/**
 * Faults layout: FSTS in words on top, one row per fault recording register (FRCD 0 … n-1) with
 * its state spelled out — "● F=1 pending", "○ cleared", "— empty" — the reason code and name,
 * the source, PASID, address and access; the register the latest fault event touched is marked
 * "◀ latest"; the latest dropped faults follow, each with why. Pure.
 */
import { bdf, hex } from "../common/events.ts";
import { px, type TextLine } from "../common/svg.ts";
import { CHAR_W, clip } from "../common/text.ts";
import { pendingCount, type FaultsState } from "./model.ts";

export interface RecordMark {
  key: string;
  index: number;
  x: number;
  y: number;
  w: number;
  h: number;
  status: "pending" | "cleared" | "empty";
  latest: boolean;
  current: boolean;
  lines: TextLine[];
  title: string;
}

export interface FaultsLayout {
  width: number;
  height: number;
  text: TextLine[];
  records: RecordMark[];
  summary: string;
}

const M = 12;
const ROW_H = 40;
const GAP = 4;
const STATUS_TEXT = { pending: "● F=1 pending", cleared: "○ cleared (F=0)", empty: "— empty" } as const;

export function layoutFaults(s: FaultsState, cursorSeq: number, size: { width: number }): FaultsLayout {
  const width = Math.max(size.width, 560);
  const chars = Math.floor((width - 2 * M - 16) / CHAR_W);
  const pending = pendingCount(s);
  const text: TextLine[] = [
    { key: "title", x: M, y: 18, text: `Fault recording registers · ${s.size} · recorded ${s.recorded} · dropped ${s.dropped} · fault interrupts ${s.irqs}` },
    {
      key: "fsts", x: M, y: 36, cls: s.pfo ? "err" : "dim",
      text: `FSTS: ${s.pfo ? "⚠ PFO set (primary fault overflow: new faults are dropped)" : "PFO clear"} · PPF ${pending ? `set (${pending} pending)` : "clear"}${s.fri !== null ? ` · FRI ${s.fri}` : ""}`,
    },
    { key: "about", x: M, y: 54, cls: "dim", text: clip("Unrecoverable DMA faults: recorded by the IOMMU, logged and cleared by the driver's fault interrupt handler.", chars) },
  ];
  let y = 66;
  const records: RecordMark[] = [];
  const last = s.last;
  for (let i = 0; i < s.size; i++) {
    const r = s.records.get(i);
    const status = !r ? "empty" : r.pending ? "pending" : "cleared";
    const isLatest = !!last && last.index === i;
    const line1 = r
      ? `FRCD ${i} · ${STATUS_TEXT[status]} · reason 0x${r.reason.toString(16).padStart(2, "0")} · ${bdf(r.rid)} · ${r.pasid >= 0 ? `PASID ${r.pasid}` : "no PASID"} · ${r.write ? "write" : "read"} ${hex(r.addr)}`
      : `FRCD ${i} · ${STATUS_TEXT.empty}`;
    const line2 = r ? (status === "cleared" && r.text ? r.text : r.name) : "";
    const lines: TextLine[] = [
      { key: "a", x: 8, y: 16, text: clip(line1 + (isLatest ? `  ◀ latest: ${last!.kind}` : ""), chars), cls: `st st-${status}` },
      ...(line2 ? [{ key: "b", x: 8, y: 32, text: clip(line2, chars), cls: status === "pending" ? "err" : "dim" }] : []),
    ];
    records.push({
      key: `frcd${i}`, index: i, x: M, y, w: px(width - 2 * M), h: ROW_H, status, latest: isLatest, current: isLatest && last!.seq === cursorSeq,
      lines, title: r ? `${line1}: ${r.name}${r.text ? `. Driver: ${r.text}` : ""}` : line1,
    });
    y += ROW_H + GAP;
  }
  y += 10;
  text.push({ key: "drops", x: M, y: y + 6, text: s.dropped ? `Dropped faults (latest ${s.drops.length} of ${s.dropped}):` : "No fault dropped.", cls: s.dropped ? undefined : "dim" });
  y += 12;
  for (const d of s.drops) {
    y += 16;
    const name = s.names.get(d.reason);
    text.push({ key: `drop${d.seq}`, x: M + 12, y, text: clip(`✖ 0x${d.reason.toString(16).padStart(2, "0")}${name ? ` ${name}` : ""} from ${bdf(d.rid)} — ${d.why}`, chars - 2), cls: d.seq === cursorSeq ? "err" : "dim" });
  }
  const summary = `Fault recording registers: ${pending} pending, ${s.recorded} recorded, ${s.dropped} dropped${s.pfo ? ", primary fault overflow" : ""}.${[...s.records.values()].filter((r) => r.pending).map((r) => ` FRCD ${r.index}: reason 0x${r.reason.toString(16)} ${r.name} from ${bdf(r.rid)} at ${hex(r.addr)}.`).join("")}`;
  return { width, height: y + M + 8, text, records, summary };
}
