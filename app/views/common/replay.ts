/**
 * Time travel over an append-only trace: the state a reducer reaches after the event at a cursor,
 * without re-scanning the whole trace per frame.
 *
 * A `Replay` keeps a head state folded forward as the trace grows (following the live end costs
 * only the new events), plus a deep copy (checkpoint) every `every` events. A cursor behind the
 * head restarts from the nearest checkpoint at or before it: one clone plus at most `every` steps,
 * and scrubbing forward from there continues from the previous answer instead of the checkpoint.
 * A new run replaces the events array (TraceSlice.clearTrace), which starts everything over.
 */
import { indexAtOrBefore, type TraceEvent } from "./events.ts";

export interface Reducer<S> {
  /** The state before any event. */
  init(): S;
  /** Fold one event into the state, in place. */
  step(state: S, e: TraceEvent): void;
  /** A copy that later steps on either side cannot affect (for checkpoints). */
  clone(state: S): S;
}

interface Snapshot<S> {
  /** index of the last event folded in (-1: none) */
  idx: number;
  state: S;
}

export class Replay<S> {
  private events: readonly TraceEvent[] | null = null;
  private head!: Snapshot<S>;
  /** sorted by idx; checkpoints[k].idx = (k + 1) * every - 1 */
  private checkpoints: Snapshot<S>[] = [];
  /** the last answer behind the head, reused when the cursor moves forward from it */
  private scratch: Snapshot<S> | null = null;

  constructor(
    private readonly reducer: Reducer<S>,
    private readonly every = 1024,
  ) {}

  /**
   * The state after the last event with seq ≤ `seq`. The object belongs to the replay: read it
   * before the next call, never mutate or keep it.
   */
  at(events: readonly TraceEvent[], seq: number): S {
    return this.atIndex(events, indexAtOrBefore(events, seq));
  }

  /** The state after events[0..idx] (idx = -1: the initial state). Same ownership rule as `at`. */
  atIndex(events: readonly TraceEvent[], idx: number): S {
    if (events !== this.events || events.length < this.head.idx + 1) this.restart(events);
    idx = Math.min(idx, events.length - 1);
    if (idx >= this.head.idx) {
      this.advanceHead(events, idx);
      return this.head.state;
    }
    const cp = this.checkpointAtOrBefore(idx);
    const s = this.scratch;
    if (!s || s.idx > idx || s.idx < (cp?.idx ?? -1)) {
      this.scratch = cp ? { idx: cp.idx, state: this.reducer.clone(cp.state) } : { idx: -1, state: this.reducer.init() };
    }
    const scratch = this.scratch!;
    for (let i = scratch.idx + 1; i <= idx; i++) this.reducer.step(scratch.state, events[i]);
    scratch.idx = idx;
    return scratch.state;
  }

  private restart(events: readonly TraceEvent[]): void {
    this.events = events;
    this.head = { idx: -1, state: this.reducer.init() };
    this.checkpoints = [];
    this.scratch = null;
  }

  private advanceHead(events: readonly TraceEvent[], idx: number): void {
    const { reducer, every, head } = this;
    for (let i = head.idx + 1; i <= idx; i++) {
      reducer.step(head.state, events[i]);
      if ((i + 1) % every === 0) this.checkpoints.push({ idx: i, state: reducer.clone(head.state) });
    }
    head.idx = Math.max(head.idx, idx);
  }

  private checkpointAtOrBefore(idx: number): Snapshot<S> | undefined {
    const k = Math.floor((idx + 1) / this.every) - 1;
    return k >= 0 ? this.checkpoints[Math.min(k, this.checkpoints.length - 1)] : undefined;
  }
}
