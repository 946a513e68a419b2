/**
 * Page-request layout, top to bottom: the page request queue (a window of the ring around PQH,
 * with PQH/PQT markers and the overflow flag, over a strip of the whole ring), each device's
 * device-TLB, the page request groups, and the sequence chart: one lane per party (device, IOMMU,
 * kernel fault path, fault fd, script), one row per message up to the cursor (the latest
 * MAX_ROWS), each an arrow from its sender's lane to its receiver's with a label, the group tag
 * (G1, G2, … with PRGI and cookie in the groups list) and its time. A selected group's messages
 * and list entry are marked with ◆ and a heavier line, never by colour alone. Pure.
 */
import { bdf, hex, permText, sizeText } from "../common/events.ts";
import { px, type TextLine } from "../common/svg.ts";
import { CHAR_W, clip } from "../common/text.ts";
import { LANES, pendingSlots, type DevtlbEntry, type Lane, type PrqAt } from "./model.ts";

export interface SlotMark {
  key: string;
  slot: number;
  x: number;
  y: number;
  w: number;
  h: number;
  /** between PQH and PQT: written, not yet consumed */
  pending: boolean;
  head: boolean;
  tail: boolean;
  text: string;
  title: string;
}

export interface DevtlbMark {
  key: string;
  rid: number;
  way: number;
  x: number;
  y: number;
  w: number;
  h: number;
  lines: TextLine[];
  title: string;
  latest: boolean;
}

export interface GroupMark {
  key: string;
  id: number;
  x: number;
  y: number;
  w: number;
  h: number;
  text: string;
  title: string;
  selected: boolean;
  stage: string;
}

export interface MessageMark {
  /** the event's seq */
  key: string;
  seq: number;
  group: number;
  /** arrow (or self-loop) with its head, one path */
  d: string;
  label: TextLine;
  time: TextLine | null;
  title: string;
  bad: boolean;
  selected: boolean;
  /** the message is the event at the cursor */
  current: boolean;
  self: boolean;
}

export interface LaneMark {
  key: Lane;
  x: number;
  lines: TextLine[];
}

export interface PrqLayout {
  width: number;
  height: number;
  text: TextLine[];
  /** the whole ring as a strip: outline and pending range */
  ringStrip: { outline: string; pending: string };
  slots: SlotMark[];
  devtlb: DevtlbMark[];
  groups: GroupMark[];
  lanes: LaneMark[];
  /** every lifeline, one path */
  lifelines: string;
  messages: MessageMark[];
  summary: string;
}

/** Rows of the sequence chart: the latest messages up to the cursor. */
export const MAX_ROWS = 60;
/** Groups listed: the latest ones begun up to the cursor. */
const MAX_GROUPS = 8;
const M = 12;
const GUTTER = 84;
const ROW_H = 30;
const SLOT_W = 26;
const SLOT_H = 24;
const DEV_W = 178;
const DEV_H = 34;
const GAP = 4;

function timeText(ns: number): string {
  return ns >= 1e6 ? `${(ns / 1e6).toFixed(3)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns} ns`;
}

export function layoutPrq(at: PrqAt, selected: number | null, size: { width: number }): PrqLayout {
  const { state: s, messages: index } = at;
  const laneGap = Math.max(160, (size.width - 2 * M - GUTTER - 150) / (LANES.length - 1));
  const width = Math.max(size.width, 2 * M + GUTTER + laneGap * (LANES.length - 1) + 150);
  const text: TextLine[] = [];
  const pending = pendingSlots(s);
  text.push({
    key: "title", x: M, y: 18,
    text: `Page requests · ${at.count} message${at.count === 1 ? "" : "s"} · ${at.groups} group${at.groups === 1 ? "" : "s"} · ${s.requests} queued, ${s.dropped} dropped`,
  });

  // ---- the ring ----
  let y = 34;
  text.push({
    key: "ring", x: M, y: y + 10,
    text: `Page request queue: ${s.ringSize} slots · PQH ${s.head} · PQT ${s.tail} · ${pending} pending · ${s.overflow ? "⚠ PRS.PRO set: OVERFLOW, requests dropped" : "PRO clear"}`,
    cls: s.overflow ? "err" : undefined,
  });
  y += 18;
  const stripW = width - 2 * M - GUTTER;
  const sx = (slot: number) => px(M + GUTTER + (slot / s.ringSize) * stripW);
  const ringStrip = {
    outline: `M${M + GUTTER},${y}h${px(stripW)}v8h${-px(stripW)}z`,
    pending: pending
      ? (s.head <= s.tail ? [[s.head, s.tail]] : [[s.head, s.ringSize], [0, s.tail]])
        .map(([a, b]) => `M${sx(a)},${y}H${Math.max(sx(b), sx(a) + 2)}v8H${sx(a)}z`).join("")
      : "",
  };
  text.push({ key: "strip", x: M, y: y + 8, text: "whole ring", cls: "dim" });
  y += 26;
  // a window of slots starting a little before the head
  const nSlots = Math.max(8, Math.min(s.ringSize, Math.floor((width - 2 * M - GUTTER) / (SLOT_W + 2))));
  const first = (s.head - Math.min(4, s.head) + s.ringSize) % s.ringSize;
  const slots: SlotMark[] = [];
  text.push({ key: "window", x: M, y: y + 16, text: `slots ${first}…`, cls: "dim" });
  for (let i = 0; i < nSlots; i++) {
    const slot = (first + i) % s.ringSize;
    const isPending = (slot - s.head + s.ringSize) % s.ringSize < pending;
    const d = s.slots.get(slot);
    slots.push({
      key: `slot${slot}`, slot, x: px(M + GUTTER + i * (SLOT_W + 2)), y, w: SLOT_W, h: SLOT_H,
      pending: isPending, head: slot === s.head, tail: slot === s.tail,
      text: isPending && d ? String(d.group) : "·",
      title: isPending && d
        ? `slot ${slot}: page request from ${bdf(d.rid)}, PRGI ${d.group}, ${hex(d.addr)} ${d.read ? "R" : ""}${d.write ? "W" : ""}${d.last ? ", last" : ""}`
        : `slot ${slot}: empty${d ? ` (consumed: PRGI ${d.group})` : ""}`,
    });
  }
  const headSlot = slots.find((m) => m.head);
  const tailSlot = slots.find((m) => m.tail);
  if (headSlot) text.push({ key: "pqh", x: headSlot.x, y: y - 3, text: "▼ PQH", cls: "ring-mark" });
  if (tailSlot) text.push({ key: "pqt", x: tailSlot.x, y: y + SLOT_H + 12, text: "▲ PQT", cls: "ring-mark" });
  y += SLOT_H + 26;

  // ---- device-TLBs ----
  const byRid = new Map<number, DevtlbEntry[]>();
  for (const e of s.devtlb.values()) byRid.set(e.rid, [...(byRid.get(e.rid) ?? []), e]);
  const c = s.devtlbCounts;
  const devtlb: DevtlbMark[] = [];
  text.push({
    key: "devtlb", x: M, y: y + 10,
    text: `Device-TLB (ATC) · ${s.devtlb.size} entr${s.devtlb.size === 1 ? "y" : "ies"} · hits ${c.hit} · misses ${c.miss} · fills ${c.fill} · evictions ${c.evict} · invalidations ${c.inv}`,
  });
  y += 18;
  const perRow = Math.max(1, Math.floor((width - 2 * M - GUTTER) / (DEV_W + GAP)));
  const devChars = Math.floor((DEV_W - 10) / CHAR_W);
  if (!byRid.size) {
    text.push({ key: "devtlb-empty", x: M + GUTTER, y: y + 14, text: "no entries (only ATS devices such as vfio0 have one)", cls: "dim" });
    y += 24;
  }
  for (const [rid, list] of [...byRid].sort((a, b) => a[0] - b[0])) {
    text.push({ key: `dev${rid}`, x: M, y: y + 21, text: bdf(rid), cls: "dim" });
    list.sort((a, b) => a.way - b.way).forEach((e, i) => {
      const lp = s.lastDevtlb;
      devtlb.push({
        key: `${rid}/${e.way}/${e.pasid}/${e.page}`, rid, way: e.way,
        x: px(M + GUTTER + (i % perRow) * (DEV_W + GAP)), y: y + Math.floor(i / perRow) * (DEV_H + GAP), w: DEV_W, h: DEV_H,
        latest: !!lp && lp.rid === rid && lp.way === e.way && (lp.kind === "hit" || lp.kind === "fill"),
        title: `${bdf(rid)} device-TLB way ${e.way}: ${e.pasid >= 0 ? `PASID ${e.pasid}` : "no PASID"}, page ${hex(e.page)} (${sizeText(e.size)}) → PA ${hex(e.pa)}, ${permText(e.perm)}`,
        lines: [
          { key: "a", x: 5, y: 14, text: clip(`way ${e.way} · ${e.pasid >= 0 ? `PASID ${e.pasid}` : "no PASID"} · ${permText(e.perm)}`, devChars) },
          { key: "b", x: 5, y: 28, text: clip(`${hex(e.page)} ${sizeText(e.size)}`, devChars) },
        ],
      });
    });
    y += Math.ceil(list.length / perRow) * (DEV_H + GAP) + 6;
  }
  y += 10;

  // ---- groups ----
  const g0 = Math.max(0, at.groups - MAX_GROUPS);
  text.push({ key: "groups", x: M, y: y + 10, text: at.groups ? `Page request groups (select one to follow its messages)${g0 ? ` · ${g0} earlier not listed` : ""}` : "Page request groups: none yet", cls: at.groups ? undefined : "dim" });
  y += 18;
  const groups: GroupMark[] = [];
  const gChars = Math.floor((width - 2 * M - GUTTER - 12) / CHAR_W);
  for (let g = g0; g < at.groups; g++) {
    const grp = index.groups[g];
    const st = index.statusAt(g, at.seq);
    const sel = selected === g;
    const desc = `G${g + 1} · ${bdf(grp.rid)}${grp.pasid >= 0 ? ` PASID ${grp.pasid}` : ""} · PRGI ${grp.prgi} · ${hex(grp.addr)} ${grp.read ? "R" : ""}${grp.write ? "W" : ""}${grp.cookie !== null ? ` · cookie ${grp.cookie}` : ""} · ${st.stage}${st.response ? ` (${st.response})` : ""}`;
    groups.push({
      key: `g${g}`, id: g, x: M + GUTTER, y, w: width - 2 * M - GUTTER, h: 20, stage: st.stage, selected: sel,
      text: clip(`${sel ? "◆ " : ""}${desc}`, gChars), title: `${desc}. ${sel ? "Selected: its messages are marked ◆." : "Select to mark its messages."}`,
    });
    y += 22;
  }
  y += 14;

  // ---- sequence chart ----
  const laneX = (l: Lane) => px(M + GUTTER + LANES.findIndex((x) => x.id === l) * laneGap);
  const lanes: LaneMark[] = LANES.map((l) => ({
    key: l.id, x: laneX(l.id),
    lines: [
      { key: "name", x: 0, y: y + 12, text: l.name, anchor: "middle" },
      { key: "sub", x: 0, y: y + 26, text: l.sub, anchor: "middle", cls: "dim" },
    ],
  }));
  y += 36;
  const firstMsg = Math.max(0, at.count - MAX_ROWS);
  if (firstMsg) text.push({ key: "earlier", x: M, y: y + 10, text: `… ${firstMsg} earlier message${firstMsg > 1 ? "s" : ""} (move the cursor back to see them)`, cls: "dim" });
  if (!at.count) text.push({ key: "none", x: M, y: y + 10, text: "No messages yet: a DMA from an ATS device (vfio0) shows its translation requests, page requests and responses here.", cls: "dim" });
  y += 16;
  const chartTop = y;
  const messages: MessageMark[] = [];
  let prevT = -1;
  const labelChars = Math.floor((laneGap * 2 - 10) / CHAR_W);
  for (let i = firstMsg; i < at.count; i++) {
    const m = index.messages[i];
    const x1 = laneX(m.from);
    const x2 = laneX(m.to);
    const ay = y + 20;
    const self = m.from === m.to;
    const head = (x: number, dir: number) => `M${px(x - dir * 7)},${ay - 4}L${x},${ay}L${px(x - dir * 7)},${ay + 4}`;
    const d = self
      ? `M${x1},${y + 12}h28v12h-28${`M${x1 + 7},${y + 20}L${x1},${y + 24}L${x1 + 7},${y + 28}`}`
      : `M${x1},${ay}H${x2}${head(x2, x2 > x1 ? 1 : -1)}`;
    const sel = selected !== null && m.group === selected;
    const tag = m.group >= 0 ? `G${m.group + 1} ` : "";
    const lx = self ? x1 + 34 : Math.min(x1, x2) + 6;
    messages.push({
      key: String(m.seq), seq: m.seq, group: m.group, d, self, bad: m.bad, selected: sel, current: m.seq === at.seq,
      label: { key: "label", x: px(lx), y: self ? y + 22 : y + 13, text: clip(`${sel ? "◆ " : ""}${m.bad ? "✖ " : ""}${tag}${m.label}`, self ? labelChars : Math.max(labelChars, Math.floor((Math.abs(x2 - x1) - 8) / CHAR_W))) },
      time: m.t !== prevT ? { key: "time", x: M, y: ay + 4, text: timeText(m.t), cls: "dim" } : null,
      title: `${timeText(m.t)}, seq ${m.seq}: ${m.detail}${m.group >= 0 ? ` [group G${m.group + 1}]` : ""}`,
    });
    prevT = m.t;
    y += ROW_H;
  }
  const lifelines = lanes.map((l) => `M${l.x},${chartTop}V${Math.max(y, chartTop + ROW_H)}`).join("");
  const summary = `Page requests at the cursor: ${at.count} messages in ${at.groups} groups; page request queue ${pending} pending of ${s.ringSize}, head ${s.head}, tail ${s.tail}${s.overflow ? ", overflow" : ""}; device-TLB ${s.devtlb.size} entries.${at.count ? ` Latest: ${index.messages[at.count - 1].detail}.` : ""}`;
  return { width, height: y + M, text, ringStrip, slots, devtlb, groups, lanes, lifelines, messages, summary };
}
