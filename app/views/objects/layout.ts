/**
 * Object-graph layout: one column per role, left to right in the direction references point
 * (DEVICE → HWPT_NESTED → HWPT_PAGING → IOAS, FAULT and other objects last: a nested HWPT holds
 * its nest parent, which holds the IOAS), objects stacked by ID in each column,
 * edges as horizontal links from the holder's right side to the held object's left side. Every
 * object says whether IOMMU_DESTROY would succeed, and if not, what holds it, in words.
 */
import { px, type TextLine } from "../common/svg.ts";
import { CHAR_W, wrap } from "../common/text.ts";
import { edgesOf, holdersOf, type BusyDestroy, type ObjEdge, type ObjNode, type ObjectsState } from "./model.ts";

export interface NodeMark {
  key: string;
  type: string;
  id: number;
  x: number;
  y: number;
  w: number;
  h: number;
  busy: boolean;
  /** role in a failed IOMMU_DESTROY at the cursor */
  role: "target" | "holder" | null;
  /** created or attached by the event at the cursor */
  recent: boolean;
  lines: TextLine[];
  /** holders, as text (data-holders) */
  holders: string;
}

export interface EdgeMark {
  key: string;
  kind: ObjEdge["kind"];
  d: string;
  label: { x: number; y: number; text: string };
  /** an edge of a failed destroy: it is what blocks it */
  blocking: boolean;
}

export interface ObjectsLayout {
  width: number;
  height: number;
  header: TextLine[];
  nodes: NodeMark[];
  edges: EdgeMark[];
  summary: string;
}

const M = 12;
/** widest and narrowest a node may be: nodes shrink (text wraps) so the columns fit the pane */
const NODE_W_MAX = 236;
const NODE_W_MIN = 150;
const COL_GAP = 70;
const ROW_GAP = 16;
const LINE_H = 15;
const TOP = 44;

/** Column of each object type: references point left to right. */
function column(type: string): number {
  if (type === "DEVICE") return 0;
  if (type === "HWPT_NESTED") return 1;
  if (type.startsWith("HWPT_")) return 2;
  if (type === "IOAS") return 3;
  return 4;
}

function describe(n: ObjNode): string[] {
  switch (n.type) {
    case "DEVICE":
      return [`${n.path?.split("/").pop() ?? "device"} bound to this iommufd`];
    case "IOAS":
      return ["I/O address space"];
    case "FAULT":
      return [n.faultFd != null ? `fault queue, fd ${n.faultFd}` : "fault queue, fd closed"];
    default:
      if (!n.type.startsWith("HWPT_")) return [];
      return [
        n.auto ? "automatic domain (attach to IOAS)" : "allocated with IOMMU_HWPT_ALLOC",
        ...(n.nestParent ? ["◇ nest parent: the second stage (host table) of nested HWPTs"] : []),
        ...(n.type === "HWPT_NESTED" ? [`◇ first stage: the guest's table${n.dataType ? ` (${n.dataType})` : ""}`] : []),
        ...(n.ioas !== undefined ? [`mirrors IOAS ${n.ioas}`] : []),
        ...(n.parent !== undefined ? [`nested on HWPT ${n.parent} (its second stage)`] : []),
        ...(n.flags ? [`flags ${n.flags}`] : []),
        ...(n.fault !== undefined ? [`faults to FAULT ${n.fault}`] : []),
      ];
  }
}

export function layoutObjects(s: ObjectsState, busy: BusyDestroy | null, touched: string[], size: { width: number }): ObjectsLayout {
  const nodes = [...s.nodes.values()].sort((a, b) => a.ictx - b.ictx || a.id - b.id);
  const multiCtx = new Set(nodes.map((n) => n.ictx)).size > 1;
  const used = [...new Set(nodes.map((n) => column(n.type)))].sort((a, b) => a - b);
  const cols = Math.max(1, used.length);
  const NODE_W = Math.max(NODE_W_MIN, Math.min(NODE_W_MAX, Math.floor((size.width - M * 2 - (cols - 1) * COL_GAP) / cols)));
  const chars = Math.floor((NODE_W - 16) / CHAR_W);
  const colY = used.map(() => TOP);
  const marks: NodeMark[] = nodes.map((n) => {
    const holders = holdersOf(s, n);
    const col = used.indexOf(column(n.type));
    const about = describe(n).flatMap((t) => wrap(t, chars));
    const status = holders.length ? wrap(`⊘ busy: held by ${holders.map((h) => h.text).join(", ")}`, chars) : ["✓ destroyable: nothing holds it"];
    const line = (text: string, i: number, cls?: string): TextLine => ({ key: `l${i}`, x: 8, y: 36 + i * LINE_H, text, cls });
    const lines: TextLine[] = [
      { key: "title", x: 8, y: 18, text: `${n.type} ${n.id}${multiCtx ? ` · iommufd #${n.ictx}` : ""}`, cls: "title" },
      ...about.map((t, i) => line(t, i, "dim")),
      ...status.map((t, i) => line(t, about.length + i, holders.length ? "busy" : "free")),
    ];
    const h = 28 + (about.length + status.length) * LINE_H;
    const y = colY[col];
    colY[col] += h + ROW_GAP;
    return {
      key: n.key, type: n.type, id: n.id, x: M + col * (NODE_W + COL_GAP), y, w: NODE_W, h, lines,
      busy: holders.length > 0,
      role: busy?.target === n.key ? "target" : busy?.holders.includes(n.key) ? "holder" : null,
      recent: touched.includes(n.key),
      holders: holders.map((x) => x.text).join("; "),
    };
  });
  const byKey = new Map(marks.map((m) => [m.key, m]));
  const edges: EdgeMark[] = edgesOf(s).map((e) => {
    const a = byKey.get(e.from)!;
    const b = byKey.get(e.to)!;
    // from the holder's right edge to the held object's left edge (its right edge when it sits in the same column)
    const [x1, y1] = [a.x + a.w, a.y + 18];
    const [x2, y2] = b.x > a.x ? [b.x, b.y + 18] : [b.x + b.w, b.y + 18];
    const mx = b.x > a.x ? (x1 + x2) / 2 : x1 + COL_GAP / 2;
    return {
      key: e.key, kind: e.kind, d: `M${x1},${y1}C${px(mx)},${y1} ${px(mx)},${y2} ${x2},${y2}`,
      label: { x: px(b.x > a.x ? mx : x1 + 6), y: px((y1 + y2) / 2 - 4), text: e.label },
      blocking: !!busy && ((e.to === busy.target && busy.holders.includes(e.from)) || (e.from === busy.target && busy.holders.includes(e.to))),
    };
  });
  const header: TextLine[] = [];
  if (busy) {
    const t = byKey.get(busy.target);
    header.push({ key: "busy", x: M, y: 18, cls: "err", text: `✖ IOMMU_DESTROY of ${t ? `${t.type} ${t.id}` : "the object"} failed: EBUSY — ${busy.reason}` });
  } else header.push({ key: "info", x: M, y: 18, cls: "dim", text: nodes.length ? "References point right; an object is destroyable when nothing holds it." : "No iommufd objects yet: IOMMU_IOAS_ALLOC or a VFIO bind makes the first." });
  const width = Math.max(size.width, M * 2 + Math.max(1, used.length) * (NODE_W + COL_GAP) - COL_GAP);
  const height = Math.max(TOP, ...colY) + M;
  const summary = nodes.length
    ? `${nodes.length} iommufd objects: ${marks.map((m) => `${m.type} ${m.id}${m.busy ? ` (busy: held by ${m.holders})` : ""}`).join("; ")}.${busy ? ` ${header[0].text}` : ""}`
    : "No iommufd objects.";
  return { width, height, header, nodes: marks, edges, summary };
}
