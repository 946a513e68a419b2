/**
 * The worker protocol: plain, structured-clone data only. One request/response pair
 * (`{id, cmd, args}` → `{id, rc, out}`) and a one-way stream of event batches. The CLI runs the
 * same engine in process; the browser runs it in a module Web Worker (engine/worker.ts).
 */
import type { RunResult, SessionConfig } from "./script/runtime.ts";

export interface RunArgs {
  /** JavaScript (TypeScript already transpiled by the editor) */
  code: string;
  /** the TypeScript source map's `mappings`, to report source lines */
  mappings?: string;
  config: SessionConfig;
  name: string;
  /** pace the run to about this many events per second of real time (0: as fast as possible) */
  eventsPerSecond?: number;
}

export type EngineRequest = { id: number; cmd: "run"; args: RunArgs } | { id: number; cmd: "ping"; args?: undefined };

export type EngineResponse =
  | { type: "response"; id: number; rc: 0; out: RunResult | "pong" }
  | { type: "response"; id: number; rc: -1; error: string };

/**
 * A batch of events of run `id`, in seq order, as one JSON array text: parsing JSON on the page is
 * several times cheaper than structured-cloning thousands of small objects (measured with
 * `npm run bench:ui`), and the page's main thread is the budget that matters.
 */
export interface EventBatch {
  type: "events";
  id: number;
  json: string;
  /** ms the worker has spent waiting for pacing so far (not engine work: the budget excludes it) */
  pausedMs: number;
}

export type EngineMessage = EngineResponse | EventBatch;

/** Events per batch: big enough to amortise postMessage, small enough to keep the UI live. */
export const EVENT_BATCH = 2048;
