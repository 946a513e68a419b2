/**
 * Derived data that only grows with the trace (indices, formatted lines, histograms): each
 * `update` folds in the events appended since the last one, and a replaced events array (a new
 * run) starts it over. Time travel over such data is a binary search, not a replay.
 */
import { lowerBound, type TraceEvent } from "./events.ts";

export abstract class Incremental {
  private source: readonly TraceEvent[] | null = null;
  private scanned = 0;

  /** Catch up with `events`; returns this for chaining. */
  update(events: readonly TraceEvent[]): this {
    if (events !== this.source || events.length < this.scanned) {
      this.source = events;
      this.scanned = 0;
      this.reset();
    }
    for (let i = this.scanned; i < events.length; i++) this.add(events[i], i);
    this.scanned = events.length;
    return this;
  }

  /** Forget everything (a new trace). */
  protected abstract reset(): void;
  /** Fold in events[index]. */
  protected abstract add(e: TraceEvent, index: number): void;
}

/** Positions (indices into the trace) of the events that match a predicate. */
export class EventIndex extends Incremental {
  /** ascending indices of matching events */
  positions: number[] = [];

  constructor(private readonly match: (e: TraceEvent) => boolean) {
    super();
  }

  protected reset(): void {
    this.positions = [];
  }

  protected add(e: TraceEvent, index: number): void {
    if (this.match(e)) this.positions.push(index);
  }

  /** Index of the last matching event at or before trace index `idx`, or -1. */
  lastAtOrBefore(idx: number): number {
    const k = lowerBound(this.positions, idx + 1) - 1;
    return k >= 0 ? this.positions[k] : -1;
  }
}
