/**
 * The timeline: every event in lanes by family, a scrubber, and playback controls.
 *
 * The plot is the scrubber (role="slider", one tab stop): click or drag moves the cursor to the
 * nearest event; ←/→ step one event, PageUp/PageDown a tenth of the trace, Home/End the first and
 * last event. Play advances the cursor at the chosen events per second (playback.ts, driven by
 * requestAnimationFrame, not React); Live returns to following the end (cursor = null).
 *
 * Root attributes: data-events (count), data-lanes ("sys,iommufd,dma,…" in lane order),
 * data-cursor (seq, or "live"), data-playing, data-axis ("time" | "seq").
 */
import { useEffect, useRef, useState, type KeyboardEvent, type PointerEvent } from "react";
import { effectiveCursor, store, useApp } from "../../store/index.ts";
import { indexAtOrBefore } from "../common/events.ts";
import { useViewFrame } from "../common/useViewFrame.ts";
import { layoutPlayhead, layoutTimeline, type TimelineLayout } from "./layout.ts";
import { nearestIndex, TimelineModel, type Axis } from "./model.ts";
import { startPlayback } from "./playback.ts";
import { renderPlayhead, renderTimeline } from "./render.ts";
import "../common/common.css";
import "./timeline.css";

const model = new TimelineModel();
const SPEEDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 20000];

export function TimelineView() {
  const playing = useApp((s) => s.playing);
  const speed = useApp((s) => s.speed);
  const live = useApp((s) => s.cursor === null);
  const [axis, setAxis] = useState<Axis>("time");
  const rootRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const summaryRef = useRef<HTMLParagraphElement>(null);
  const barRef = useRef<HTMLDivElement>(null);
  const nowRef = useRef<HTMLSpanElement>(null);
  // the static layer is redrawn only when the trace, the width or the axis changes
  const drawn = useRef<{ key: string; layout: TimelineLayout } | null>(null);
  const axisRef = useRef(axis);
  axisRef.current = axis;

  useEffect(() => startPlayback(store), []);

  const redraw = useViewFrame(rootRef, (s, size) => {
    const svg = svgRef.current!;
    const ax = axisRef.current;
    model.update(s.events);
    // the svg gets what the controls leave of the pane
    const height = size.height - barRef.current!.offsetHeight;
    const key = `${s.version}/${s.events.length}/${size.width}x${height}/${ax}`;
    if (drawn.current?.key !== key) {
      drawn.current = { key, layout: layoutTimeline(model, ax, { width: size.width, height }) };
      renderTimeline(svg, drawn.current.layout);
      summaryRef.current!.textContent = drawn.current.layout.summary;
    }
    const n = s.events.length;
    const cursorIdx = n ? indexAtOrBefore(s.events, effectiveCursor(s)) : -1;
    const selectedIdx = s.selectedSeq === null ? -1 : indexAtOrBefore(s.events, s.selectedSeq);
    const head = layoutPlayhead(drawn.current.layout, s.events, cursorIdx, selectedIdx, s.cursor === null);
    renderPlayhead(svg, drawn.current.layout, head);
    svg.setAttribute("aria-valuemin", n ? String(s.events[0].seq) : "0");
    svg.setAttribute("aria-valuemax", n ? String(s.events[n - 1].seq) : "0");
    svg.setAttribute("aria-valuenow", cursorIdx >= 0 ? String(s.events[cursorIdx].seq) : "0");
    const now = head.cursor?.text ?? "no events";
    svg.setAttribute("aria-valuetext", now);
    nowRef.current!.textContent = now;
    const d = rootRef.current!.dataset;
    d.events = String(n);
    d.lanes = drawn.current.layout.lanes.map((l) => l.label).join(",");
    d.cursor = s.cursor === null ? "live" : String(s.cursor);
    d.playing = String(s.playing);
    d.axis = ax;
  });
  useEffect(() => redraw(), [axis, redraw]);

  /** Move the cursor to trace index `idx` (clamped); scrubbing pauses playback. */
  const seek = (idx: number) => {
    const s = store.getState();
    if (!s.events.length) return;
    if (s.playing) s.setPlaying(false);
    s.setCursor(s.events[Math.max(0, Math.min(s.events.length - 1, idx))].seq);
  };

  const seekToPointer = (e: PointerEvent<SVGSVGElement>) => {
    const l = drawn.current?.layout;
    if (!l) return;
    const x = e.clientX - e.currentTarget.getBoundingClientRect().left;
    const value = ((Math.max(l.x0, Math.min(l.x1, x)) - l.x0) / (l.x1 - l.x0)) * l.max;
    seek(nearestIndex(store.getState().events, value, l.axis));
  };

  const onKeyDown = (e: KeyboardEvent<SVGSVGElement>) => {
    const s = store.getState();
    const n = s.events.length;
    if (!n) return;
    const at = indexAtOrBefore(s.events, effectiveCursor(s));
    const page = Math.max(1, Math.round(n / 10));
    const to: Record<string, number> = { ArrowRight: at + 1, ArrowUp: at + 1, ArrowLeft: at - 1, ArrowDown: at - 1, PageUp: at + page, PageDown: at - page, Home: 0, End: n - 1 };
    if (!(e.key in to)) return;
    e.preventDefault();
    seek(to[e.key]);
  };

  return (
    <div ref={rootRef} className="view timeline-view" role="region" aria-label="Timeline" data-view="timeline">
      <div ref={barRef} className="toolbar-row">
        <button type="button" className="play" aria-pressed={playing} onClick={() => store.getState().setPlaying(!playing)}>
          {playing ? "❚❚ Pause" : "▶ Play"}
        </button>
        <label className="field">
          speed
          <select value={speed} onChange={(e) => store.getState().setSpeed(Number(e.target.value))} aria-label="Playback speed, events per second">
            {[...new Set([...SPEEDS, speed])].sort((a, b) => a - b).map((v) => (
              <option key={v} value={v}>{v} ev/s</option>
            ))}
          </select>
        </label>
        <button type="button" disabled={live} onClick={() => {
          const s = store.getState();
          s.setPlaying(false);
          s.setCursor(null);
        }}>
          ⇥ Live
        </button>
        <span ref={nowRef} className="counter" aria-hidden="true" />
        <span className="spacer" />
        <label className="field">
          axis
          <select value={axis} onChange={(e) => setAxis(e.target.value as Axis)} aria-label="Timeline axis">
            <option value="time">simulated time</option>
            <option value="seq">event order</option>
          </select>
        </label>
      </div>
      <svg
        ref={svgRef}
        role="slider"
        tabIndex={0}
        aria-label="Timeline scrubber: the moment every view shows"
        aria-orientation="horizontal"
        aria-describedby="timeline-summary"
        onKeyDown={onKeyDown}
        onPointerDown={(e) => {
          e.currentTarget.setPointerCapture(e.pointerId);
          seekToPointer(e);
        }}
        onPointerMove={(e) => {
          if (e.currentTarget.hasPointerCapture(e.pointerId)) seekToPointer(e);
        }}
        onPointerUp={(e) => e.currentTarget.releasePointerCapture(e.pointerId)}
      />
      <p ref={summaryRef} id="timeline-summary" className="visually-hidden" />
    </div>
  );
}
