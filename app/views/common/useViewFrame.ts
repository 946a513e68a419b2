/**
 * The bridge from the store to a d3 view: `draw` runs outside React, once on mount and then at
 * most once per animation frame after something a view shows has changed (the trace, the cursor,
 * the selection, the notices, the machine) or its container was resized. This is zustand's
 * "transient updates" recipe: a run streaming 100k events a second, or the playhead moving every
 * frame, never re-renders a React component.
 */
import { useCallback, useEffect, useRef, type RefObject } from "react";
import { store, type AppState } from "../../store/index.ts";

export interface Size {
  width: number;
  height: number;
}

/** Minimum interval between redraws caused only by newly streamed events, in ms. */
const STREAM_MS = 100;

/** Store fields whose change means a view must redraw. */
const WATCHED = ["events", "version", "cursor", "selectedSeq", "notices", "machine"] as const satisfies readonly (keyof AppState)[];

/** Subscribe `draw` to the store and to the size of `ref`; returns a function that schedules a redraw (for view-local changes such as scrolling). */
export function useViewFrame(ref: RefObject<Element | null>, draw: (s: AppState, size: Size) => void): () => void {
  // the latest draw, so the subscription is made once yet never calls a stale closure
  const drawRef = useRef(draw);
  drawRef.current = draw;
  const scheduleRef = useRef<() => void>(() => {});
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    let size: Size = { width: el.clientWidth, height: el.clientHeight };
    let frame = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastDraw = 0;
    const run = () => {
      frame = 0;
      lastDraw = performance.now();
      drawRef.current(store.getState(), size);
    };
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(run);
    };
    // While a run streams events and the views follow its end, nobody can read 60 new walks a
    // second: redraw at most every STREAM_MS so the page keeps its frame rate (bench:ui).
    // Scrubbing, selecting and resizing still redraw on the next frame.
    const scheduleStreaming = () => {
      if (frame || timer) return;
      const wait = lastDraw + STREAM_MS - performance.now();
      if (wait <= 0) schedule();
      else timer = setTimeout(() => {
        timer = undefined;
        schedule();
      }, wait);
    };
    scheduleRef.current = schedule;
    const unsubscribe = store.subscribe((s, prev) => {
      if (!WATCHED.some((k) => s[k] !== prev[k])) return;
      const onlyNewEvents = s.cursor === prev.cursor && s.selectedSeq === prev.selectedSeq && s.notices === prev.notices && s.machine === prev.machine;
      if (onlyNewEvents && s.status === "running" && s.cursor === null) scheduleStreaming();
      else schedule();
    });
    // jsdom has no ResizeObserver: the view then keeps its first size
    const ro = typeof ResizeObserver === "function"
      ? new ResizeObserver(([entry]) => {
          size = { width: Math.round(entry.contentRect.width), height: Math.round(entry.contentRect.height) };
          schedule();
        })
      : null;
    ro?.observe(el);
    run();
    return () => {
      scheduleRef.current = () => {};
      unsubscribe();
      ro?.disconnect();
      if (frame) cancelAnimationFrame(frame);
      clearTimeout(timer);
    };
  }, [ref]);
  return useCallback(() => scheduleRef.current(), []);
}
