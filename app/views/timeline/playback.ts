/**
 * Playback: while `playing`, the cursor advances through the trace at `speed` events per second,
 * one requestAnimationFrame at a time, written straight into the store (zustand's transient
 * updates; no React render drives it). `step` is the pure part, so it is tested without frames.
 */
import type { StoreApi } from "zustand/vanilla";
import type { AppState } from "../../store/index.ts";
import { indexAtOrBefore, type TraceEvent } from "../common/events.ts";

/** Longest frame gap counted: a tab in the background must not jump the cursor by minutes. */
const MAX_DT_MS = 250;

export interface StepResult {
  /** the new cursor seq */
  cursor: number;
  /** fractional events carried to the next frame */
  carry: number;
  /** the last event was reached */
  done: boolean;
}

/** Advance `cursor` by `speed` events per second over `dtMs`. */
export function step(events: readonly TraceEvent[], cursor: number, speed: number, dtMs: number, carry: number): StepResult {
  const budget = carry + (speed * Math.min(dtMs, MAX_DT_MS)) / 1000;
  const n = Math.floor(budget);
  const idx = Math.min(events.length - 1, indexAtOrBefore(events, cursor) + n);
  return { cursor: events[idx].seq, carry: budget - n, done: idx >= events.length - 1 };
}

/** Where play starts: where the cursor is, or from the first event when live or at the end. */
export function playFrom(events: readonly TraceEvent[], cursor: number | null): number {
  const last = events[events.length - 1].seq;
  return cursor === null || cursor >= last ? events[0].seq : cursor;
}

const running = new WeakMap<StoreApi<AppState>, { users: number; stop: () => void }>();

/**
 * Drive playback for a store; returns a release function. Several callers may start it (the
 * timeline, the app shell): one loop runs per store, stopped with its last release.
 */
export function startPlayback(app: StoreApi<AppState>): () => void {
  const existing = running.get(app);
  if (existing) {
    existing.users++;
    return releaser(app);
  }
  let frame = 0;
  let last = 0;
  let carry = 0;
  const tick = (now: number) => {
    frame = 0;
    const s = app.getState();
    if (!s.playing || !s.events.length) return;
    const r = step(s.events, s.cursor ?? s.events[0].seq, s.speed, last ? now - last : 0, carry);
    last = now;
    carry = r.carry;
    if (r.cursor !== s.cursor) s.setCursor(r.cursor);
    if (r.done) s.setPlaying(false);
    else frame = requestAnimationFrame(tick);
  };
  const begin = (s: AppState) => {
    if (!s.events.length) return s.setPlaying(false);
    last = 0;
    carry = 0;
    s.setCursor(playFrom(s.events, s.cursor));
    frame = requestAnimationFrame(tick);
  };
  const unsubscribe = app.subscribe((s, prev) => {
    if (s.playing && !prev.playing) begin(s);
    else if (!s.playing && frame) {
      cancelAnimationFrame(frame);
      frame = 0;
    }
  });
  if (app.getState().playing) begin(app.getState());
  running.set(app, {
    users: 1,
    stop: () => {
      unsubscribe();
      if (frame) cancelAnimationFrame(frame);
    },
  });
  return releaser(app);
}

/** A release function for one caller: calling it again does nothing. */
function releaser(app: StoreApi<AppState>): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const r = running.get(app);
    if (!r || --r.users > 0) return;
    r.stop();
    running.delete(app);
  };
}
