/**
 * The app's one store (zustand, vanilla API so the worker bridge writes to it outside React),
 * made of slices in the zustand "slices pattern": each slice owns its fields and the actions that
 * write them. Views read narrow selectors; per-frame work (animation, the playhead) subscribes
 * with `store.subscribe` and draws into d3 directly instead of re-rendering React.
 *
 * The trace is append-only and large (the engine can stream 100k events a second), so
 * `trace.events` is one array mutated in place and `trace.version` bumps on every batch: select
 * `version` to react, read `events` through getState() in the render.
 */
import { createStore } from "zustand/vanilla";
import { useStore } from "zustand";
import type { TraceEvent } from "../../engine/trace/events.ts";

export type RunStatus = "idle" | "running" | "done" | "error" | "timeout" | "stopped";

export interface ScriptSlice {
  /** the editor's text (saved to localStorage as it changes) */
  code: string;
  /** name of the example it came from, for the title */
  title: string;
  setCode(code: string): void;
  loadScript(code: string, title: string): void;
}

export interface MachineSlice {
  machine: { iommu: string; knobs: Record<string, number> };
  setMachine(m: { iommu: string; knobs?: Record<string, number> }): void;
}

export interface ScriptError {
  name: string;
  message: string;
  code?: string;
  line?: number;
  column?: number;
  engineBug?: boolean;
}

export interface RunSlice {
  status: RunStatus;
  /** the thrown error of the last run, with its script line */
  error: ScriptError | null;
  /** runaway budget in ms of engine work (the worker is replaced when a run exceeds it) */
  budgetMs: number;
  /** pace runs to this many events per second so the views can be followed (0: full speed) */
  pace: number;
  runId: number;
  /** one-line messages for the log pane from the app itself (timeouts, worker restarts) */
  notices: { seq: number; text: string }[];
  startRun(): number;
  finishRun(status: RunStatus, error?: ScriptError | null): void;
  notice(text: string): void;
  setBudget(ms: number): void;
  setPace(eventsPerSecond: number): void;
}

export interface TraceSlice {
  /** every event of the current run, in seq order (mutated in place; see version) */
  events: TraceEvent[];
  /** bumps on every appended batch */
  version: number;
  appendEvents(batch: TraceEvent[]): void;
  clearTrace(): void;
}

export interface SelectionSlice {
  /** the event the user picked (log click, timeline click): every view highlights it */
  selectedSeq: number | null;
  select(seq: number | null): void;
}

export interface PlaybackSlice {
  /** time-travel cursor: views show the state after this event; null = follow the end */
  cursor: number | null;
  playing: boolean;
  /** events per second while replaying */
  speed: number;
  setCursor(seq: number | null): void;
  setPlaying(p: boolean): void;
  setSpeed(s: number): void;
}

export type ThemePref = "system" | "dark" | "light";

export interface UiSlice {
  /** the user's choice (kept in localStorage, never in shared links) */
  themePref: ThemePref;
  /** what is shown: the preference, or the system's when "system" */
  theme: "dark" | "light";
  helpOpen: boolean;
  examplesOpen: boolean;
  /** a transient message for the status bar ("Link copied") */
  toast: string | null;
  setThemePref(p: ThemePref, systemDark: boolean): void;
  setHelpOpen(open: boolean): void;
  setExamplesOpen(open: boolean): void;
  showToast(text: string | null): void;
}

export type AppState = ScriptSlice & MachineSlice & RunSlice & TraceSlice & SelectionSlice & PlaybackSlice & UiSlice;

type Set = (partial: Partial<AppState> | ((s: AppState) => Partial<AppState>)) => void;
type Get = () => AppState;

const scriptSlice = (set: Set): ScriptSlice => ({
  code: "",
  title: "",
  setCode: (code) => set({ code }),
  loadScript: (code, title) => set({ code, title }),
});

const machineSlice = (set: Set): MachineSlice => ({
  machine: { iommu: "vtd", knobs: {} },
  setMachine: (m) => set({ machine: { iommu: m.iommu, knobs: m.knobs ?? {} } }),
});

const runSlice = (set: Set, get: Get): RunSlice => ({
  status: "idle",
  error: null,
  budgetMs: 5000,
  pace: 0,
  runId: 0,
  notices: [],
  startRun: () => {
    const runId = get().runId + 1;
    set({ status: "running", error: null, runId, notices: [], cursor: null, selectedSeq: null, playing: false });
    get().clearTrace();
    return runId;
  },
  finishRun: (status, error = null) => set({ status, error }),
  notice: (text) => set((s) => ({ notices: [...s.notices, { seq: s.events.length ? s.events[s.events.length - 1].seq : 0, text }] })),
  setBudget: (ms) => set({ budgetMs: Math.max(100, Math.min(600_000, Math.round(ms))) }),
  setPace: (eventsPerSecond) => set({ pace: Math.max(0, Math.round(eventsPerSecond)) }),
});

const traceSlice = (set: Set, get: Get): TraceSlice => ({
  events: [],
  version: 0,
  appendEvents: (batch) => {
    const events = get().events;
    for (const e of batch) events.push(e);
    set((s) => ({ version: s.version + 1 }));
  },
  clearTrace: () => set((s) => ({ events: [], version: s.version + 1 })),
});

const selectionSlice = (set: Set): SelectionSlice => ({
  selectedSeq: null,
  select: (seq) => set({ selectedSeq: seq }),
});

const playbackSlice = (set: Set): PlaybackSlice => ({
  cursor: null,
  playing: false,
  speed: 50,
  setCursor: (cursor) => set({ cursor }),
  setPlaying: (playing) => set({ playing }),
  setSpeed: (speed) => set({ speed: Math.max(1, Math.min(100_000, speed)) }),
});

const uiSlice = (set: Set): UiSlice => ({
  themePref: "system",
  theme: "dark",
  helpOpen: false,
  examplesOpen: false,
  toast: null,
  setThemePref: (p, systemDark) => set({ themePref: p, theme: p === "system" ? (systemDark ? "dark" : "light") : p }),
  setHelpOpen: (helpOpen) => set({ helpOpen }),
  setExamplesOpen: (examplesOpen) => set({ examplesOpen }),
  showToast: (toast) => set({ toast }),
});

export function createAppStore() {
  return createStore<AppState>()((set, get) => ({
    ...scriptSlice(set),
    ...machineSlice(set),
    ...runSlice(set, get),
    ...traceSlice(set, get),
    ...selectionSlice(set),
    ...playbackSlice(set),
    ...uiSlice(set),
  }));
}

/** The app's store. Tests make their own with createAppStore(). */
export const store = createAppStore();

export function useApp<T>(selector: (s: AppState) => T): T {
  return useStore(store, selector);
}

/** The seq views should show the state at: the cursor, or the last event. */
export function effectiveCursor(s: Pick<AppState, "cursor" | "events">): number {
  if (s.cursor !== null) return s.cursor;
  return s.events.length ? s.events[s.events.length - 1].seq : 0;
}
