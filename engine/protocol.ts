/**
 * The worker protocol: plain, structured-clone data only. One request/response pair
 * (`{id, cmd, args}` → `{id, rc, out}`) and a one-way stream of event batches. The CLI runs the
 * same engine in process; the browser runs it in a module Web Worker (engine/worker.ts).
 */
import type { TraceEvent } from "./trace/events.ts";
import type { RunResult, SessionConfig } from "./script/runtime.ts";

export interface RunArgs {
  /** JavaScript (TypeScript already transpiled by the editor) */
  code: string;
  /** the TypeScript source map's `mappings`, to report source lines */
  mappings?: string;
  config: SessionConfig;
  name: string;
}

export type EngineRequest = { id: number; cmd: "run"; args: RunArgs } | { id: number; cmd: "ping"; args?: undefined };

export type EngineResponse =
  | { type: "response"; id: number; rc: 0; out: RunResult | "pong" }
  | { type: "response"; id: number; rc: -1; error: string };

/** A batch of events of run `id`, in seq order. */
export interface EventBatch {
  type: "events";
  id: number;
  events: TraceEvent[];
}

export type EngineMessage = EngineResponse | EventBatch;

/** Events per batch: big enough to amortise postMessage, small enough to keep the UI live. */
export const EVENT_BATCH = 2048;
