/**
 * Log layout: the rows visible in the scroll viewport (plus a few either side), at fixed height,
 * so the DOM holds a screenful of rows whether the trace has ten events or a million.
 */
import { rowSeq, type LogRows } from "./model.ts";

/** Row height in px (matches log.css line-height). */
export const ROW_H = 18;
const OVERSCAN = 10;

export interface RowMark {
  /** event seq, or "n<k>" for the k-th notice */
  key: string;
  /** DOM id, for aria-activedescendant */
  id: string;
  row: number;
  y: number;
  seq: number;
  text: string;
  line?: number;
  severity: "error" | "warn" | "notice" | null;
  /** the icon and the word beside it: "✖ EBUSY", "⚠ FRCD", "ℹ notice" */
  icon: string;
  badge: string;
  /** the user's selection */
  selected: boolean;
  /** the row of the time-travel cursor */
  current: boolean;
  /** after the cursor: not yet happened at the moment shown */
  future: boolean;
  /** the keyboard's row */
  active: boolean;
}

export interface LogLayout {
  /** the scrollable height: every row */
  height: number;
  rows: RowMark[];
}

export interface LogMarks {
  /** time-travel cursor (null: live) */
  cursor: number | null;
  selectedSeq: number | null;
  activeRow: number | null;
}

const ICON = { error: "✖", warn: "⚠", notice: "ℹ" } as const;

/** The marks of the rows intersecting [top, top + height). */
export function layoutLog(rows: LogRows, viewport: { top: number; height: number }, m: LogMarks): LogLayout {
  const first = Math.max(0, Math.floor(viewport.top / ROW_H) - OVERSCAN);
  const last = Math.min(rows.count - 1, Math.ceil((viewport.top + viewport.height) / ROW_H) + OVERSCAN);
  const cursorRow = m.cursor === null ? -1 : rows.rowOfSeq(m.cursor);
  const out: RowMark[] = [];
  for (let r = first; r <= last; r++) {
    const row = rows.at(r);
    const seq = rowSeq(row);
    const isNotice = row.kind === "notice";
    const severity = isNotice ? "notice" : row.line.severity;
    out.push({
      key: isNotice ? `n${row.n}` : String(seq),
      id: isNotice ? `log-notice-${row.n}` : `log-row-${seq}`,
      row: r,
      y: r * ROW_H,
      seq,
      text: isNotice ? row.notice.text : row.line.text,
      line: isNotice ? undefined : row.line.line,
      severity,
      icon: severity ? ICON[severity] : "",
      badge: isNotice ? "notice" : row.line.badge,
      selected: !isNotice && m.selectedSeq === seq,
      current: r === cursorRow,
      future: m.cursor !== null && seq > m.cursor,
      active: r === m.activeRow,
    });
  }
  return { height: rows.count * ROW_H, rows: out };
}
