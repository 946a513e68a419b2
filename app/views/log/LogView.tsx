/**
 * The strace-style log, virtualized. Keyboard: the list is one tab stop; ↑/↓, PageUp/PageDown,
 * Home/End move the active line and select it (the cursor follows: every view shows that
 * moment), Enter selects the active line again; clicking a line does the same.
 *
 * Root attributes: data-rows (lines + notices), data-errors (error lines), data-selected-line
 * (script line of the selected event, "" when none). Each rendered row: id, role="option",
 * aria-selected, data-seq, data-line (script line, when known), data-row; classes sev-error /
 * sev-warn / sev-notice, selected, current (the cursor's line), future (after the cursor).
 */
import { useRef, useState, type KeyboardEvent, type MouseEvent } from "react";
import { store, type AppState } from "../../store/index.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutLog, ROW_H } from "./layout.ts";
import { LogModel, LogRows, rowSeq } from "./model.ts";
import { renderLog } from "./render.ts";
import "../common/common.css";
import "./log.css";

const model = new LogModel();

export function LogView() {
  const rootRef = useRef<HTMLDivElement>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const rowsRef = useRef<HTMLDivElement>(null);
  const countRef = useRef<HTMLSpanElement>(null);
  // view-local state that must not re-render React: the keyboard's row, the last rows drawn,
  // whether to stick to the live end, and what the last draw saw (to react to changes only)
  const local = useRef({
    events: null as AppState["events"] | null, active: null as number | null, rows: null as LogRows | null, stick: true,
    cursor: null as number | null, selected: null as number | null, ownSelect: null as number | null,
  });
  const [copied, setCopied] = useState("");

  const redraw = useViewFrame(rootRef, (s) => {
    const L = local.current;
    const scroller = scrollRef.current!;
    if (s.events !== L.events) {
      // a new run: follow its live end again
      L.events = s.events;
      L.active = null;
      L.stick = true;
    }
    const rows = new LogRows(model.update(s.events), s.notices);
    L.rows = rows;
    rowsRef.current!.style.height = `${rows.count * ROW_H}px`;
    if (s.selectedSeq !== L.selected && s.selectedSeq !== L.ownSelect) L.active = s.selectedSeq === null ? null : rows.rowOfSeq(s.selectedSeq);
    if (s.cursor === null && L.stick) scroller.scrollTop = scroller.scrollHeight;
    else if (s.cursor !== null && s.cursor !== L.cursor) reveal(scroller, rows.rowOfSeq(s.cursor));
    L.cursor = s.cursor;
    L.selected = s.selectedSeq;
    const layout = layoutLog(rows, { top: scroller.scrollTop, height: scroller.clientHeight }, { cursor: s.cursor, selectedSeq: s.selectedSeq, activeRow: L.active });
    renderLog(rowsRef.current!, layout);
    const active = layout.rows.find((r) => r.active);
    if (active) scroller.setAttribute("aria-activedescendant", active.id);
    else scroller.removeAttribute("aria-activedescendant");
    countRef.current!.textContent = `${rows.count} lines · ${model.errors} errors`;
    const d = rootRef.current!.dataset;
    d.rows = String(rows.count);
    d.errors = String(model.errors);
    const sel = s.selectedSeq === null ? -1 : model.countUpTo(s.selectedSeq) - 1;
    d.selectedLine = sel >= 0 && model.lines[sel].seq === s.selectedSeq ? String(model.lines[sel].line ?? "") : "";
  });

  /** Make `row` the active row, select its event and move the cursor there. */
  const activate = (row: number) => {
    const L = local.current;
    if (!L.rows || !L.rows.count) return;
    row = Math.max(0, Math.min(L.rows.count - 1, row));
    L.active = row;
    L.stick = false;
    const seq = rowSeq(L.rows.at(row));
    L.ownSelect = seq;
    reveal(scrollRef.current!, row);
    const st = store.getState();
    st.select(seq);
    st.setCursor(seq);
    redraw();
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const L = local.current;
    const page = Math.max(1, Math.floor(scrollRef.current!.clientHeight / ROW_H) - 1);
    const from = L.active ?? (L.rows && L.cursor !== null ? L.rows.rowOfSeq(L.cursor) : (L.rows?.count ?? 0));
    const to: Record<string, number> = { ArrowDown: from + 1, ArrowUp: from - 1, PageDown: from + page, PageUp: from - page, Home: 0, End: Infinity, Enter: from };
    if (!(e.key in to)) return;
    e.preventDefault();
    activate(to[e.key] === Infinity ? (L.rows?.count ?? 1) - 1 : to[e.key]);
  };

  const onClick = (e: MouseEvent) => {
    const row = (e.target as Element).closest<HTMLElement>(".row");
    if (row?.dataset.row) activate(Number(row.dataset.row));
  };

  const onScroll = () => {
    const el = scrollRef.current!;
    local.current.stick = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_H;
    redraw();
  };

  const copy = async () => {
    const rows = new LogRows(model.update(store.getState().events), store.getState().notices);
    try {
      await navigator.clipboard.writeText(rows.text());
      setCopied(`Copied ${rows.count} lines.`);
    } catch {
      setCopied("Copy failed: the browser refused clipboard access.");
    }
  };

  return (
    <div ref={rootRef} className="view log-view" data-view="log">
      <div className="toolbar-row">
        <strong id="log-title">Log</strong>
        <span ref={countRef} className="counter" />
        <span className="spacer" />
        <span role="status" className="counter">{copied}</span>
        <button type="button" onClick={copy}>Copy as text</button>
      </div>
      <div ref={scrollRef} className="log-scroll" role="listbox" aria-labelledby="log-title" tabIndex={0} onKeyDown={onKeyDown} onClick={onClick} onScroll={onScroll}>
        <div ref={rowsRef} className="log-rows" />
      </div>
    </div>
  );
}

/** Scroll the least needed to show `row`. */
function reveal(scroller: HTMLElement, row: number): void {
  if (row < 0) return;
  const top = row * ROW_H;
  if (top < scroller.scrollTop) scroller.scrollTop = top;
  else if (top + ROW_H > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = top + ROW_H - scroller.clientHeight;
}
